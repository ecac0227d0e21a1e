package processor

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
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
