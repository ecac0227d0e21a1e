package kafka

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTail: the newest committed records of a topic across its
// partitions, newest first, without aborted ones, values cut to the limit,
// each partition read to its end.
func TestTail(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "dlq", "empty"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Transactions, as the processor writes its dead letters: records
	// 0–8 committed one by one, then an aborted one that no reader may
	// see, on partitions 0, 1, 2 in turn.
	tx, err := kgo.NewClient(append(opts, kgo.TransactionalID("tail-test"), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	write := func(i int, commit bool) {
		t.Helper()
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		v := fmt.Sprintf("record-%d-", i) + strings.Repeat("x", 100)
		r := &kgo.Record{Topic: "dlq", Partition: int32(i % 3), Key: []byte(fmt.Sprint("k", i)), Value: []byte(v), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := tx.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := tx.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 9 {
		write(i, true)
	}
	write(9, false)

	recs, complete, err := Tail(ctx, opts, "dlq", 4, TailOptions{MaxValueBytes: 10})
	if err != nil || !complete {
		t.Fatalf("Tail: complete %v, %v", complete, err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, string(r.Key))
		if len(r.Value) != 10 || r.ValueBytes != len("record-0-")+100 || !strings.HasPrefix(string(r.Value), "record-") {
			t.Errorf("%s: value %q (%d bytes on the topic), want its first 10 bytes", r.Key, r.Value, r.ValueBytes)
		}
	}
	if want := "k8 k7 k6 k5"; strings.Join(got, " ") != want {
		t.Errorf("newest 4: %s, want %s (newest first, the aborted k9 never)", strings.Join(got, " "), want)
	}

	all, complete, err := Tail(ctx, opts, "dlq", 100, TailOptions{})
	if err != nil || !complete || len(all) != 9 {
		t.Fatalf("Tail 100: %d records, complete %v, %v; want the 9 committed", len(all), complete, err)
	}
	if len(all[0].Value) != all[0].ValueBytes {
		t.Errorf("a value under the default limit was cut: %d of %d bytes", len(all[0].Value), all[0].ValueBytes)
	}

	if recs, complete, err := Tail(ctx, opts, "empty", 10, TailOptions{}); err != nil || !complete || len(recs) != 0 {
		t.Errorf("empty topic: %d records, complete %v, %v", len(recs), complete, err)
	}
	if _, _, err := Tail(ctx, opts, "no-such-topic", 10, TailOptions{}); err == nil || !strings.Contains(err.Error(), "no-such-topic") {
		t.Errorf("missing topic: %v, want an error naming it", err)
	}
}
