package kafka

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProduceSyncEndsWithItsContext: a broker that holds every produce
// request, as one that went away mid-request does. kgo's ProduceSync with
// an idempotent producer waits on past its context (a node stopping while
// its broker was down never stopped); ours returns the context's error.
// Both return once the broker answers, ours with the records written.
func TestProduceSyncEndsWithItsContext(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	release := make(chan struct{})
	released := false
	free := func() {
		if !released {
			released = true
			close(release)
		}
	}
	defer free()
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	theirs := make(chan error, 1)
	go func() { theirs <- cl.ProduceSync(ctx, &kgo.Record{Value: []byte("a")}).FirstErr() }()
	ours := make(chan error, 1)
	go func() { ours <- ProduceSync(ctx, cl, &kgo.Record{Value: []byte("b")}, &kgo.Record{Value: []byte("c")}) }()
	select {
	case err := <-ours:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ProduceSync with the broker holding the request: %v, want the context's deadline", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ProduceSync still waits 5s after its context ended")
	}
	select {
	case err := <-theirs:
		// Not an error of ours: kgo may one day fail such records.
		t.Logf("kgo's ProduceSync returned too, with %v", err)
	case <-time.After(time.Second):
		t.Log("kgo's ProduceSync is still waiting a second after its context ended")
	}
	free()
	if err := <-theirs; err != nil {
		t.Logf("kgo's ProduceSync after the broker answered: %v", err)
	}

	// The broker answers again: records are written, and a record that
	// cannot be written returns its error.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := ProduceSync(ctx2, cl, &kgo.Record{Value: []byte("d")}, &kgo.Record{Value: []byte("e")}); err != nil {
		t.Fatalf("ProduceSync to an answering broker: %v", err)
	}
	if err := ProduceSync(ctx2, cl); err != nil {
		t.Fatalf("ProduceSync of no records: %v", err)
	}
	big := make([]byte, 2<<20)
	if err := ProduceSync(ctx2, cl, &kgo.Record{Value: []byte("f")}, &kgo.Record{Value: big}); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("ProduceSync of a record over the batch limit: %v, want %v", err, kerr.MessageTooLarge)
	}
}
