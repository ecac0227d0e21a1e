package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestListOffsetsRetries: errors that pass by themselves (a broker
// restarting, a topic not yet everywhere) are retried; others are not.
func TestListOffsetsRetries(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	ok := kadm.ListedOffsets{"t": {0: {Topic: "t", Partition: 0, Offset: 7}}}
	for _, tc := range []struct {
		name  string
		first error
		retry bool
	}{
		{"a broker being restarted", &kadm.ShardErrors{Name: "ListOffsets", Errs: []kadm.ShardError{{Err: fmt.Errorf("unable to dial: %w", dial)}}}, true},
		{"leadership moving", kerr.NotLeaderForPartition, true},
		{"a topic not yet on every broker", kerr.UnknownTopicOrPartition, true},
		{"not authorized", kerr.TopicAuthorizationFailed, false},
		{"anything else", errors.New("boom"), false},
	} {
		calls := 0
		list := func(context.Context, ...string) (kadm.ListedOffsets, error) {
			calls++
			if calls == 1 {
				return nil, tc.first
			}
			return ok, nil
		}
		got, err := ListOffsets(context.Background(), list, 1, "t")
		switch {
		case tc.retry && (err != nil || calls != 2):
			t.Errorf("%s: %d calls, error %v; want a retry and success", tc.name, calls, err)
		case tc.retry && got["t"][0].Offset != 7:
			t.Errorf("%s: offsets %v", tc.name, got)
		case !tc.retry && (err == nil || calls != 1):
			t.Errorf("%s: %d calls, error %v; want no retry", tc.name, calls, err)
		}
	}
}

// TestStableEndsWaitsForOpenTransactions: while a transaction is open
// below the high watermark, StableEnds waits and names the partition it
// waits for, unless asked for other partitions only; once the transaction
// commits, it returns the offset past the commit marker.
func TestStableEndsWaitsForOpenTransactions(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("stable-ends"),
		kgo.DefaultProduceTopic("t"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)

	// A second is time enough to list the offsets on a loaded machine
	// (300 ms was not, once); the error then names what stayed open.
	short, cancel := context.WithTimeout(ctx, time.Second)
	_, err = StableEnds(short, adm, "t", nil, nil)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "t/1 (stable 0, end 1)") {
		t.Fatalf("with a transaction open on t/1: %v, want an error naming t/1", err)
	}
	// Asked for t/0 only, it does not wait for t/1.
	short, cancel = context.WithTimeout(ctx, 5*time.Second)
	only0, err := StableEnds(short, adm, "t", []int32{0}, nil)
	cancel()
	if err != nil || len(only0) != 1 || only0[0] != 0 {
		t.Fatalf("t/0 alone: %v %v, want t/0 at 0 at once", only0, err)
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(200 * time.Millisecond)
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Errorf("commit: %v", err)
		}
	}()
	long, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ends, err := StableEnds(long, adm, "t", nil, nil)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if len(ends) != 2 || ends[1] != 2 || ends[0] != 0 {
		t.Errorf("ends %v, want t/0 at 0 and t/1 at 2 (the record and the commit marker)", ends)
	}
}
