package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/tracing"
	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// The trace contexts the callers of these tests send: trace and parent
// span IDs chosen by the test.
const (
	httpTrace, httpSpan   = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	kafkaTrace, kafkaSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	lastTrace, lastSpan   = "5c1b1ef7bd5e3a2f9a7d3a1e6f0c2b44", "a1b2c3d4e5f60718"
	// The owner's name is data: it must appear in no span.
	tracedOwner = "tracy-the-owner"
)

func traceparent(traceID, spanID string) string { return "00-" + traceID + "-" + spanID + "-01" }

// parseTraceparent returns the trace and span IDs of a traceparent.
func parseTraceparent(t *testing.T, v string) (traceID, spanID string) {
	t.Helper()
	parts := strings.Split(v, "-")
	if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || len(parts[2]) != 16 {
		t.Fatalf("traceparent %q is not W3C Trace Context", v)
	}
	return parts[1], parts[2]
}

// postTraced posts a command to the account aggregate with the given
// traceparent header and returns the status and the answer.
func postTraced(t *testing.T, s *server, id, typ, data, tp string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", s.url+"/v1/commands/account/"+id, strings.NewReader(fmt.Sprintf(`{"type":%q,"data":%s}`, typ, data)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("traceparent", tp)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%d %s: %v", resp.StatusCode, raw, err)
	}
	return resp.StatusCode, out
}

// depositOverKafka produces a Deposit to the commands topic as any Kafka
// client would, with the given extra headers, and returns its result
// record once it is there.
func depositOverKafka(t *testing.T, b *broker, names kafka.Names, id, commandID string, extra ...string) *kgo.Record {
	t.Helper()
	produce(t, kafkaClient(t, b), &kgo.Record{Topic: names.Commands("account"), Key: []byte(id), Value: []byte(`{"amount":5}`),
		Headers: hdrs(append([]string{"strata-command-type", "Deposit", "strata-command-id", commandID, "content-type", "application/json"}, extra...)...)})
	res := byKey(readUntil(t, b, names.Results("account"), func(rs []*kgo.Record) bool { return byKey(rs, commandID) != nil }), commandID)
	var out struct{ Status, Error string }
	if err := json.Unmarshal(res.Value, &out); err != nil || out.Status != "accepted" {
		t.Fatalf("result of %s: %s %s (%v)", commandID, out.Status, out.Error, err)
	}
	return res
}

// eventsOf reads the events topic until id has n events and returns them
// by version.
func eventsOf(t *testing.T, b *broker, names kafka.Names, id string, n int) map[string]*kgo.Record {
	t.Helper()
	byVersion := map[string]*kgo.Record{}
	readUntil(t, b, names.Events("account"), func(rs []*kgo.Record) bool {
		for _, r := range rs {
			if string(r.Key) == id {
				byVersion[header(r, kafka.HeaderVersion)] = r
			}
		}
		return len(byVersion) >= n
	})
	return byVersion
}

// resultRecord returns the result record of a command ID.
func resultRecord(t *testing.T, b *broker, names kafka.Names, commandID string) *kgo.Record {
	t.Helper()
	return byKey(readUntil(t, b, names.Results("account"), func(rs []*kgo.Record) bool { return byKey(rs, commandID) != nil }), commandID)
}

// publishedWith waits until the view topic holds a record of key that
// carries a traceparent of traceID, and returns that traceparent. The
// view's publisher is elected when the node starts: first wait until it
// published anything of key, then send (through send) the command whose
// trace the record must carry.
func publishedWith(t *testing.T, b *broker, topic, key string, send func() string) string {
	t.Helper()
	eventually(t, 30*time.Second, func() bool {
		return byKey(readAll(t, b, topic, kgo.ReadCommitted()), key) != nil
	}, func() string { return "nothing of " + key + " published on " + topic })
	traceID := send()
	var found string
	eventually(t, 30*time.Second, func() bool {
		for _, r := range readAll(t, b, topic, kgo.ReadCommitted()) {
			if string(r.Key) == key && strings.Contains(header(r, tracing.HeaderTraceparent), traceID) {
				found = header(r, tracing.HeaderTraceparent)
			}
		}
		return found != ""
	}, func() string { return "no record of " + key + " on " + topic + " carries trace " + traceID })
	return found
}

// spans indexes the spans a recorder has seen.
type spans struct{ rec *tracetest.SpanRecorder }

func (s spans) byID(id string) sdktrace.ReadOnlySpan {
	for _, sp := range s.rec.Ended() {
		if sp.SpanContext().SpanID().String() == id {
			return sp
		}
	}
	return nil
}

// waitFor waits until a span with the ID has ended and returns it.
func (s spans) waitFor(t *testing.T, id string) sdktrace.ReadOnlySpan {
	t.Helper()
	eventually(t, 10*time.Second, func() bool { return s.byID(id) != nil }, func() string { return "no span " + id })
	return s.byID(id)
}

// children returns the names of the spans whose parent is id, sorted.
func (s spans) children(id string) []string {
	var out []string
	for _, sp := range s.rec.Ended() {
		if sp.Parent().SpanID().String() == id {
			out = append(out, sp.Name())
		}
	}
	sort.Strings(out)
	return out
}

// child returns the span named name whose parent is id, waiting for it.
func (s spans) child(t *testing.T, id, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found sdktrace.ReadOnlySpan
	eventually(t, 10*time.Second, func() bool {
		for _, sp := range s.rec.Ended() {
			if sp.Parent().SpanID().String() == id && sp.Name() == name {
				found = sp
			}
		}
		return found != nil
	}, func() string { return fmt.Sprintf("no span %q under %s (children %v)", name, id, s.children(id)) })
	return found
}

func attrs(sp sdktrace.ReadOnlySpan) map[string]string {
	out := map[string]string{}
	for _, kv := range sp.Attributes() {
		out[string(kv.Key)] = kv.Value.Emit()
	}
	return out
}

// testTracingOn: with a TracerProvider, a command posted with a
// traceparent, or produced to the commands topic with one, is a span in
// that trace (under the HTTP request's span, or under the producer's);
// its events and result carry the command span on, the projections'
// spans of applying them are its children, and a published view record
// carries the apply span on. A malformed traceparent starts a new trace,
// never an error or a dead letter. No span holds a command's data.
func testTracingOn(t *testing.T, b *broker) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir(), tracerProvider: tp})
	sp := spans{rec}
	const id = "acc-traced"

	if code, out := postTraced(t, s, id, "OpenAccount", `{"owner":"`+tracedOwner+`","initial_balance":10}`, traceparent(httpTrace, httpSpan)); code != 200 {
		t.Fatalf("open: %d %v", code, out)
	}
	kafkaResult := depositOverKafka(t, b, names, id, "k-traced", "traceparent", traceparent(kafkaTrace, kafkaSpan))
	if code, out := postTraced(t, s, id, "Deposit", `{"amount":1}`, "00-this-is-not-a-trace-01"); code != 200 {
		t.Fatalf("malformed traceparent over HTTP: %d %v", code, out)
	}
	depositOverKafka(t, b, names, id, "k-malformed", "traceparent", "garbage")
	evs := eventsOf(t, b, names, id, 4)

	// Over HTTP: request span → command span → event.
	trID, cmdID := parseTraceparent(t, header(evs["1"], tracing.HeaderTraceparent))
	if trID != httpTrace {
		t.Fatalf("event 1 is in trace %s, want the request's %s", trID, httpTrace)
	}
	cmd := sp.waitFor(t, cmdID)
	if cmd.Name() != "command account.OpenAccount" || cmd.SpanKind() != trace.SpanKindConsumer {
		t.Fatalf("event 1 carries span %q (%v), want the command's", cmd.Name(), cmd.SpanKind())
	}
	req := sp.waitFor(t, cmd.Parent().SpanID().String())
	if req.Name() != "POST /v1/commands/{aggregate}/{id}" || req.Parent().SpanID().String() != httpSpan || !req.Parent().IsRemote() {
		t.Fatalf("the command's parent is %q under %v, want the HTTP request's span under the caller's %s", req.Name(), req.Parent(), httpSpan)
	}
	a := attrs(cmd)
	for k, v := range map[string]string{"strata.aggregate.type": "account", "strata.command.type": "OpenAccount", "strata.command.status": "accepted",
		"strata.aggregate.version": "1", "strata.events": "1", "messaging.system": "kafka", "messaging.destination.name": names.Commands("account")} {
		if a[k] != v {
			t.Errorf("command span: %s = %q, want %q (all: %v)", k, a[k], v, a)
		}
	}
	if a["strata.command.id"] == "" || a["messaging.kafka.offset"] == "" || a["messaging.destination.partition.id"] == "" {
		t.Errorf("command span lacks its command ID or record position: %v", a)
	}
	for _, stage := range []string{"decide", "kafka produce", "kafka commit", "pebble write"} {
		sp.child(t, cmdID, stage)
	}
	apply := sp.child(t, cmdID, "apply accounts")
	if aa := attrs(apply); aa["strata.view"] != "accounts" || aa["strata.event.type"] != "AccountOpened" || aa["messaging.destination.name"] != names.Events("account") {
		t.Errorf("apply span attributes %v", aa)
	}

	// Over Kafka: the producer's span → command span → event and result.
	trID, cmdID = parseTraceparent(t, header(evs["2"], tracing.HeaderTraceparent))
	if trID != kafkaTrace {
		t.Fatalf("event 2 is in trace %s, want the command record's %s", trID, kafkaTrace)
	}
	cmd = sp.waitFor(t, cmdID)
	if cmd.Name() != "command account.Deposit" || cmd.Parent().SpanID().String() != kafkaSpan || !cmd.Parent().IsRemote() {
		t.Fatalf("event 2 carries span %q under %v, want the command's under the producer's %s", cmd.Name(), cmd.Parent(), kafkaSpan)
	}
	if got := header(kafkaResult, tracing.HeaderTraceparent); got != traceparent(kafkaTrace, cmdID) {
		t.Fatalf("the result record carries %q, want the command's span %s", got, traceparent(kafkaTrace, cmdID))
	}
	sp.child(t, cmdID, "apply accounts")

	// A malformed traceparent, over HTTP or Kafka, is a new trace: its
	// root is the request's span, or the command's.
	for _, v := range []string{"3", "4"} {
		trID, cmdID = parseTraceparent(t, header(evs[v], tracing.HeaderTraceparent))
		root := sp.waitFor(t, cmdID)
		if v == "3" {
			root = sp.waitFor(t, root.Parent().SpanID().String())
		}
		if trID == httpTrace || trID == kafkaTrace || root.Parent().IsValid() {
			t.Fatalf("event %s after a malformed traceparent: trace %s, %q under %v; want a new root", v, trID, root.Name(), root.Parent())
		}
	}
	if dl := readAll(t, b, names.DLQ("account"), kgo.ReadUncommitted()); len(dl) > 0 {
		t.Fatalf("%d record(s) dead-lettered", len(dl))
	}

	// A published view record carries the span of the apply that wrote it.
	got := publishedWith(t, b, names.View("accounts"), id, func() string {
		if code, out := postTraced(t, s, id, "Deposit", `{"amount":1}`, traceparent(lastTrace, lastSpan)); code != 200 {
			t.Fatalf("deposit: %d %v", code, out)
		}
		return lastTrace
	})
	_, applyID := parseTraceparent(t, got)
	apply = sp.waitFor(t, applyID)
	cmd = sp.waitFor(t, apply.Parent().SpanID().String())
	if apply.Name() != "apply accounts" || cmd.Name() != "command account.Deposit" {
		t.Fatalf("the view record carries %q under %q, want the accounts apply under the command", apply.Name(), cmd.Name())
	}

	for _, sp := range rec.Ended() {
		for _, kv := range sp.Attributes() {
			if strings.Contains(kv.Value.Emit(), tracedOwner) {
				t.Errorf("span %q holds the command's data: %s=%s", sp.Name(), kv.Key, kv.Value.Emit())
			}
		}
	}
}

// testTracingOff: without a TracerProvider Strata records nothing, but a
// traceparent (and tracestate) that arrives with a command, over HTTP or
// Kafka, reaches its events, its result and the published view record as
// it came, so the services around Strata join one trace. A malformed one
// is dropped, never an error or a dead letter.
func testTracingOff(t *testing.T, b *broker) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir()})
	const id = "acc-untraced"
	httpTP, kafkaTP := traceparent(httpTrace, httpSpan), traceparent(kafkaTrace, kafkaSpan)

	code, out := postTraced(t, s, id, "OpenAccount", `{"owner":"ann","initial_balance":10}`, httpTP)
	if code != 200 {
		t.Fatalf("open: %d %v", code, out)
	}
	kafkaResult := depositOverKafka(t, b, names, id, "k-untraced", "traceparent", kafkaTP, "tracestate", "vendor=x")
	if code, out := postTraced(t, s, id, "Deposit", `{"amount":1}`, "00-this-is-not-a-trace-01"); code != 200 {
		t.Fatalf("malformed traceparent over HTTP: %d %v", code, out)
	}
	depositOverKafka(t, b, names, id, "k-malformed", "traceparent", "garbage")
	evs := eventsOf(t, b, names, id, 4)

	if got := header(evs["1"], tracing.HeaderTraceparent); got != httpTP {
		t.Errorf("event 1 (over HTTP) carries traceparent %q, want %q", got, httpTP)
	}
	if got := header(resultRecord(t, b, names, out["command_id"].(string)), tracing.HeaderTraceparent); got != httpTP {
		t.Errorf("its result carries traceparent %q, want %q", got, httpTP)
	}
	if got, state := header(evs["2"], tracing.HeaderTraceparent), header(evs["2"], tracing.HeaderTracestate); got != kafkaTP || state != "vendor=x" {
		t.Errorf("event 2 (over Kafka) carries %q %q, want %q vendor=x", got, state, kafkaTP)
	}
	if got := header(kafkaResult, tracing.HeaderTraceparent); got != kafkaTP {
		t.Errorf("its result carries traceparent %q, want %q", got, kafkaTP)
	}
	for _, v := range []string{"3", "4"} {
		if got := header(evs[v], tracing.HeaderTraceparent); got != "" {
			t.Errorf("event %s after a malformed traceparent carries %q", v, got)
		}
	}
	if dl := readAll(t, b, names.DLQ("account"), kgo.ReadUncommitted()); len(dl) > 0 {
		t.Fatalf("%d record(s) dead-lettered", len(dl))
	}
	lastTP := traceparent(lastTrace, lastSpan)
	got := publishedWith(t, b, names.View("accounts"), id, func() string {
		if code, out := postTraced(t, s, id, "Deposit", `{"amount":1}`, lastTP); code != 200 {
			t.Fatalf("deposit: %d %v", code, out)
		}
		return lastTrace
	})
	if got != lastTP {
		t.Fatalf("the view record carries %q, want %q", got, lastTP)
	}
}
