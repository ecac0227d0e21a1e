package processor

import (
	"testing"
	"time"

	"github.com/strata-es/strata/internal/tracing"
	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TestUntracedCommandsAllocateNothing: with tracing off, a command without
// a traceparent costs the batch no allocation for tracing, and its records
// get no header.
func TestUntracedCommandsAllocateNothing(t *testing.T) {
	p := &Processor{agg: "account"}
	bt := &batchTrace{start: time.Now()}
	r := &kgo.Record{Topic: "strata.account.commands", Key: []byte("acc-1"), Headers: []kgo.RecordHeader{
		{Key: "strata-command-type", Value: []byte("Deposit")},
		{Key: "strata-command-id", Value: []byte("c-1")},
		{Key: "content-type", Value: []byte("application/json")},
	}}
	ev := &kgo.Record{}
	res := &Result{CommandID: "c-1", Status: StatusAccepted}
	if n := testing.AllocsPerRun(100, func() {
		ct := p.startCommand(bt, r)
		ct.commandType(p.agg, "Deposit")
		ct.carry(ev)
		ct.decided(res)
	}); n != 0 {
		t.Fatalf("%v allocations per untraced command", n)
	}
	if len(ev.Headers) != 0 || len(bt.cmds) != 0 {
		t.Fatalf("headers %v, %d traced commands", ev.Headers, len(bt.cmds))
	}
	bt.end(nil)
}

// BenchmarkCommandTrace is what tracing costs one command with one event
// and its result: untraced (tracing off, no traceparent: the hot path),
// passing an incoming traceparent on with tracing off, and recording the
// command's span and its four stage spans (spans dropped, not exported).
func BenchmarkCommandTrace(b *testing.B) {
	plain := []kgo.RecordHeader{
		{Key: "strata-command-type", Value: []byte("Deposit")},
		{Key: "strata-command-id", Value: []byte("c-1")},
		{Key: "content-type", Value: []byte("application/json")},
	}
	withParent := append(append([]kgo.RecordHeader(nil), plain...), kgo.RecordHeader{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")})
	for _, bc := range []struct {
		name    string
		tracer  *tracing.Tracer
		headers []kgo.RecordHeader
	}{
		{"untraced", nil, plain},
		{"incoming-off", nil, withParent},
		{"on", tracing.New(sdktrace.NewTracerProvider()), withParent},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := &Processor{agg: "account"}
			r := &kgo.Record{Topic: "strata.account.commands", Key: []byte("acc-1"), Headers: bc.headers}
			res := &Result{CommandID: "c-1", Status: StatusAccepted, Version: 2, Events: make([]ResultEvent, 1)}
			ev := &kgo.Record{Headers: make([]kgo.RecordHeader, 4, 8)}
			result := &kgo.Record{Headers: make([]kgo.RecordHeader, 1, 4)}
			now := time.Now()
			bt := &batchTrace{tracer: bc.tracer, start: now, flushed: now, committed: now, stored: now}
			b.ReportAllocs()
			for b.Loop() {
				ct := p.startCommand(bt, r)
				ct.commandType(p.agg, "Deposit")
				ev.Headers = ev.Headers[:4]
				ct.carry(ev)
				ct.decided(res)
				result.Headers = result.Headers[:1]
				ct.carry(result)
				bt.end(nil)
				bt.cmds = bt.cmds[:0]
			}
		})
	}
}
