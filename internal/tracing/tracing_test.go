package tracing

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

const (
	incoming  = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	traceID   = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentID  = "00f067aa0ba902b7"
	tracestat = "vendor=opaque"
)

func record(kv ...string) *kgo.Record {
	r := &kgo.Record{Topic: "t", Key: []byte("k")}
	for i := 0; i+1 < len(kv); i += 2 {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return r
}

func header(hs []kgo.RecordHeader, key string) string {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestOffPassesTheIncomingContextOn: with tracing off (no provider, or the
// no-op one) Start starts nothing, and the headers passed on are the
// incoming traceparent and tracestate, as they came.
func TestOffPassesTheIncomingContextOn(t *testing.T) {
	for name, tr := range map[string]*Tracer{"nil provider": New(nil), "no-op provider": New(noop.NewTracerProvider())} {
		t.Run(name, func(t *testing.T) {
			if tr.On() {
				t.Fatal("tracing is on")
			}
			r := record("strata-command-type", "Deposit", HeaderTraceparent, incoming, HeaderTracestate, tracestat)
			if !tr.Traced(r) {
				t.Fatal("a record with a traceparent is not traced: its context would be lost")
			}
			ctx, span := tr.Start(FromRecord(context.Background(), r), "command")
			if span.IsRecording() {
				t.Fatal("a span records with tracing off")
			}
			span.End()
			hs := Headers(ctx)
			if got := header(hs, HeaderTraceparent); got != incoming {
				t.Fatalf("traceparent passed on = %q, want %q", got, incoming)
			}
			if got := header(hs, HeaderTracestate); got != tracestat {
				t.Fatalf("tracestate passed on = %q, want %q", got, tracestat)
			}
			if tr.Traced(record("strata-command-type", "Deposit")) {
				t.Fatal("a record without trace context is traced with tracing off")
			}
		})
	}
}

// TestMalformedTraceparentIsIgnored: a traceparent that is not W3C Trace
// Context gives no parent and nothing to pass on; never an error.
func TestMalformedTraceparentIsIgnored(t *testing.T) {
	for _, bad := range []string{
		"", "garbage", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", // no flags
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace ID
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero span ID
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
		strings.Repeat("0", 10000),
	} {
		ctx := FromRecord(context.Background(), record(HeaderTraceparent, bad))
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			t.Errorf("%q gave a span context %v", bad, sc)
		}
		if hs := Headers(ctx); hs != nil {
			t.Errorf("%q: headers %v to pass on", bad, hs)
		}
		h := http.Header{}
		h.Set(HeaderTraceparent, bad)
		if sc := trace.SpanContextFromContext(FromHTTP(context.Background(), h)); sc.IsValid() {
			t.Errorf("%q over HTTP gave a span context %v", bad, sc)
		}
	}
}

// TestOnStartsAChild: with a provider, a span started from a record's
// context is its child, in the same trace, and the headers carry the new
// span; without a context it is a new root.
func TestOnStartsAChild(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	tr := New(tp)
	if !tr.On() || !tr.Traced(record()) {
		t.Fatal("tracing is off with a provider")
	}
	ctx, span := tr.Start(FromRecord(context.Background(), record(HeaderTraceparent, incoming)), "command")
	span.End()
	sc := span.SpanContext()
	if sc.TraceID().String() != traceID || sc.SpanID().String() == parentID {
		t.Fatalf("span %v: want trace %s and a span of its own", sc, traceID)
	}
	if got, want := header(Headers(ctx), HeaderTraceparent), "00-"+traceID+"-"+sc.SpanID().String()+"-01"; got != want {
		t.Fatalf("traceparent passed on = %q, want %q", got, want)
	}
	ended := rec.Ended()
	if len(ended) != 1 || ended[0].Parent().SpanID().String() != parentID || !ended[0].Parent().IsRemote() {
		t.Fatalf("recorded %v", ended)
	}
	_, root := tr.Start(context.Background(), "root")
	root.End()
	if !root.SpanContext().IsValid() || root.SpanContext().TraceID().String() == traceID {
		t.Fatalf("a span without a parent: %v", root.SpanContext())
	}
}

// TestUntracedRecordsAllocateNothing: the check every command and event
// goes through costs no allocation when there is nothing to trace.
func TestUntracedRecordsAllocateNothing(t *testing.T) {
	var off *Tracer
	r := record("strata-event-type", "MoneyDeposited", "strata-version", "7", "strata-command-id", "c1", "content-type", "avro/binary")
	h := http.Header{"Content-Type": {"application/json"}}
	if n := testing.AllocsPerRun(100, func() {
		if off.Traced(r) || HasHTTPContext(h) {
			t.Fatal("traced")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per untraced record", n)
	}
}

func TestConfigProblemsNameTheSetting(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Exporter: "zipkin", SampleRatio: 1}, `tracing.exporter (--tracing-exporter): "zipkin", want none, otlp or stdout`},
		{Config{Exporter: "otlp", Protocol: "http/json", SampleRatio: 1}, `tracing.protocol (--tracing-protocol): "http/json"`},
		{Config{Exporter: "otlp", Endpoint: "collector", SampleRatio: 1}, `tracing.endpoint (--tracing-endpoint): "collector", want host:port or`},
		{Config{Exporter: "otlp", Endpoint: "ftp://collector:21", SampleRatio: 1}, `tracing.endpoint (--tracing-endpoint): "ftp://collector:21"`},
		{Config{Exporter: "otlp", Headers: map[string]string{"bad name": "x"}, SampleRatio: 1}, `tracing.headers (--tracing-headers): "bad name"`},
		{Config{Exporter: "otlp", SampleRatio: 1.5}, "tracing.sample_ratio (--tracing-sample-ratio): 1.5, want 0 to 1"},
		{Config{Exporter: "otlp", SampleRatio: math.NaN()}, "tracing.sample_ratio (--tracing-sample-ratio): NaN"},
	} {
		ps := tc.c.Problems()
		if len(ps) != 1 || !strings.Contains(ps[0].Error(), tc.want) {
			t.Errorf("%+v: problems %v, want one containing %q", tc.c, ps, tc.want)
		}
		if _, err := NewProvider(context.Background(), tc.c, "i1", io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: NewProvider err = %v", tc.c, err)
		}
	}
	for _, good := range []Config{
		{}, {Exporter: "none"}, {Exporter: "stdout", SampleRatio: 0},
		{Exporter: "otlp", Protocol: "grpc", Endpoint: "collector:4317", Insecure: true, SampleRatio: 0.1},
		{Exporter: "otlp", Endpoint: "https://otlp.example.com/v1/traces", Headers: map[string]string{"api-key": "s3cret"}, SampleRatio: 1},
		{Exporter: "otlp", Endpoint: "[::1]:4318", SampleRatio: 1},
	} {
		if ps := good.Problems(); len(ps) > 0 {
			t.Errorf("%+v: %v", good, ps)
		}
	}
	if tp, err := NewProvider(context.Background(), Config{Exporter: "none"}, "i1", io.Discard); tp != nil || err != nil {
		t.Fatalf("exporter none: %v, %v", tp, err)
	}
}

// TestStdoutExporter: spans are written on shutdown at the latest, with
// the service name and the instance ID.
func TestStdoutExporter(t *testing.T) {
	var out bytes.Buffer
	tp, err := NewProvider(context.Background(), Config{Exporter: "stdout", SampleRatio: 1}, "0123abcd", &out)
	if err != nil {
		t.Fatal(err)
	}
	_, span := New(tp).Start(context.Background(), "command account.Deposit")
	span.End()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"Name":"command account.Deposit"`, `"Key":"service.name","Value":{"Type":"STRING","Value":"strata"}`, `"Key":"service.instance.id","Value":{"Type":"STRING","Value":"0123abcd"}`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %s:\n%s", want, out.String())
		}
	}
}

// collector is an OTLP/HTTP endpoint that remembers what it received.
type collector struct {
	mu    sync.Mutex
	paths []string
	auth  []string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	c.mu.Lock()
	c.paths = append(c.paths, r.URL.Path)
	c.auth = append(c.auth, r.Header.Get("Api-Key"))
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (c *collector) got() (paths, auth []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.paths...), append([]string(nil), c.auth...)
}

func exportOne(t *testing.T, c Config) {
	t.Helper()
	tp, err := NewProvider(context.Background(), c, "i1", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, span := New(tp).Start(context.Background(), "x")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown (flush): %v", err)
	}
}

// TestOTLPHTTP: the endpoint and headers of the config reach the
// collector; a URL without a path gets /v1/traces; without an endpoint the
// exporter follows OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_HEADERS.
func TestOTLPHTTP(t *testing.T) {
	col := &collector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	exportOne(t, Config{Exporter: "otlp", Endpoint: srv.URL, Headers: map[string]string{"api-key": "from-config"}, SampleRatio: 1})
	exportOne(t, Config{Exporter: "otlp", Endpoint: strings.TrimPrefix(srv.URL, "http://"), Insecure: true, SampleRatio: 1})
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL+"/base")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=from-env")
	exportOne(t, Config{Exporter: "otlp", SampleRatio: 1})
	paths, auth := col.got()
	if strings.Join(paths, " ") != "/v1/traces /v1/traces /base/v1/traces" {
		t.Fatalf("paths %v", paths)
	}
	if strings.Join(auth, ",") != "from-config,,from-env" {
		t.Fatalf("api-key headers %q", auth)
	}
}
