package projections

import (
	"testing"

	"github.com/strata-es/strata/internal/tracing"
	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func eventRecord(traceparent string) *kgo.Record {
	r := &kgo.Record{Topic: "strata.account.events", Key: []byte("acc-1"), Headers: []kgo.RecordHeader{
		{Key: "strata-event-type", Value: []byte("MoneyDeposited")},
		{Key: "strata-aggregate-version", Value: []byte("7")},
		{Key: "strata-command-id", Value: []byte("c-1")},
		{Key: "content-type", Value: []byte("avro/binary")},
	}}
	if traceparent != "" {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: "traceparent", Value: []byte(traceparent)})
	}
	return r
}

const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// TestApplyTraceOff: with tracing off, an event without trace context is
// not traced (no allocation), and on a published view an event's context
// is carried on as it came; on an unpublished one there is nothing to do.
func TestApplyTraceOff(t *testing.T) {
	r := &Runner{cfg: RunnerConfig{Projection: Projection{Name: "accounts"}}}
	plain, traced := eventRecord(""), eventRecord(incoming)
	if r.traced(traced) {
		t.Fatal("an unpublished view traces with tracing off")
	}
	r.pub = &publisher{}
	if n := testing.AllocsPerRun(100, func() {
		if r.traced(plain) {
			t.Fatal("an event without trace context is traced")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per untraced event", n)
	}
	if !r.traced(traced) {
		t.Fatal("the context of an event is not carried to the published view")
	}
	at := r.startApply(traced, "account")
	if len(at.carried()) != 1 || string(at.carried()[0].Value) != incoming || at.span.IsRecording() {
		t.Fatalf("carried %v (recording %v), want the event's traceparent as it came", at.carried(), at.span.IsRecording())
	}
	endApplies([]*applyTrace{at}, nil)
}

// BenchmarkApplyTrace is what tracing costs applying one event: untraced
// (the hot path), carrying an event's context to a published view with
// tracing off, and recording the apply span (dropped, not exported).
func BenchmarkApplyTrace(b *testing.B) {
	for _, bc := range []struct {
		name   string
		tracer *tracing.Tracer
		rec    *kgo.Record
	}{
		{"untraced", nil, eventRecord("")},
		{"incoming-off", nil, eventRecord(incoming)},
		{"on", tracing.New(sdktrace.NewTracerProvider()), eventRecord(incoming)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := &Runner{cfg: RunnerConfig{Projection: Projection{Name: "accounts"}, Tracer: bc.tracer}, pub: &publisher{}}
			ch := newChanges()
			traced := make([]*applyTrace, 0, 1)
			b.ReportAllocs()
			for b.Loop() {
				var at *applyTrace
				if r.traced(bc.rec) {
					at = r.startApply(bc.rec, "account")
					traced = append(traced, at)
				}
				ch.set("acc-1", nil, at.carried())
				endApplies(traced, nil)
				traced = traced[:0]
			}
		})
	}
}
