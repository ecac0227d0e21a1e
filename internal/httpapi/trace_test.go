package httpapi

import (
	"bytes"
	"context"
	"net/http/httptest"
	"testing"

	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/internal/tracing"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const (
	traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	traceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentID    = "00f067aa0ba902b7"
)

// sendWith posts a deposit with the given traceparent (none when empty)
// and returns the span context the Sender was given.
func sendWith(t *testing.T, cfg Config, fake *senderfake, tp string) (int, trace.SpanContext) {
	t.Helper()
	req := httptest.NewRequest("POST", "/v1/commands/account/acc-1", bytes.NewReader([]byte(`{"type":"Deposit","data":{"amount":5},"command_id":"c-1"}`)))
	if tp != "" {
		req.Header.Set("traceparent", tp)
	}
	rec := httptest.NewRecorder()
	Handler(cfg).ServeHTTP(rec, req)
	s, ok := fake.last()
	if !ok {
		t.Fatalf("nothing sent: %d %s", rec.Code, rec.Body)
	}
	return rec.Code, s.span
}

// TestTraceparentReachesTheSender: with tracing off, the request's
// traceparent is the context the command is sent with (so it reaches the
// command record); a malformed one is ignored, the command accepted.
func TestTraceparentReachesTheSender(t *testing.T) {
	fake := newSenderfake()
	cfg := Config{Sender: fake, Applied: position.NewTracker()}
	code, sc := sendWith(t, cfg, fake, traceparent)
	if code != 200 || sc.TraceID().String() != traceID || sc.SpanID().String() != parentID || !sc.IsSampled() {
		t.Fatalf("%d, sent with %v; want the incoming span context", code, sc)
	}
	code, sc = sendWith(t, cfg, fake, "00-not-a-trace-01")
	if code != 200 || sc.IsValid() {
		t.Fatalf("malformed traceparent: %d, sent with %v", code, sc)
	}
	code, sc = sendWith(t, cfg, fake, "")
	if code != 200 || sc.IsValid() {
		t.Fatalf("no traceparent: %d, sent with %v", code, sc)
	}
}

// TestCommandSpan: with tracing on, a POST is a server span, a child of
// the request's traceparent, and the command is sent in that span; its
// attributes name the route, the command and the status, not the data.
func TestCommandSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	fake := newSenderfake()
	cfg := Config{Sender: fake, Applied: position.NewTracker(), Tracer: tracing.New(tp)}
	code, sc := sendWith(t, cfg, fake, traceparent)
	ended := rec.Ended()
	if code != 200 || len(ended) != 1 {
		t.Fatalf("%d, %d spans", code, len(ended))
	}
	span := ended[0]
	if !span.SpanContext().Equal(sc) {
		t.Fatalf("sent with %v, not within the request's span %v", sc, span.SpanContext())
	}
	if span.Parent().TraceID().String() != traceID || span.Parent().SpanID().String() != parentID || span.SpanKind() != trace.SpanKindServer {
		t.Fatalf("span %s: parent %v, kind %v", span.Name(), span.Parent(), span.SpanKind())
	}
	want := map[attribute.Key]string{
		"http.route": "/v1/commands/{aggregate}/{id}", "http.request.method": "POST", "http.response.status_code": "200",
		tracing.AggregateType: "account", tracing.CommandType: "Deposit", tracing.CommandID: "c-1", tracing.CommandStatus: "accepted",
	}
	got := map[attribute.Key]string{}
	for _, kv := range span.Attributes() {
		got[kv.Key] = kv.Value.Emit()
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("attribute %s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("attributes %v, want only %v", got, want)
	}
	if span.Name() != "POST /v1/commands/{aggregate}/{id}" {
		t.Errorf("span name %q", span.Name())
	}
	// Without a traceparent: a new root.
	_, sc = sendWith(t, cfg, fake, "")
	if !sc.IsValid() || sc.TraceID().String() == traceID {
		t.Fatalf("no traceparent: sent with %v, want a new trace", sc)
	}
}
