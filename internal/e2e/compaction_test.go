package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testSnapshotTopicIsCompacted: the snapshots topic Strata creates is
// compacted by the broker: older values of a key go away, the newest stays.
func testSnapshotTopicIsCompacted(t *testing.T, b *broker) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir()})
	s.stop(t)
	topic := names.Snapshots("account")
	cl := kafkaClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if b.compact == nil {
		// Make the real cleaner act within the test: roll segments fast
		// and clean as soon as anything is dirty. Only the segments, not
		// the policy, are changed: compaction is what Strata set.
		_, err := kadm.NewClient(cl).AlterTopicConfigs(ctx, []kadm.AlterConfig{
			{Name: "segment.ms", Value: kadm.StringPtr("100")},
			{Name: "min.cleanable.dirty.ratio", Value: kadm.StringPtr("0.01")},
			{Name: "delete.retention.ms", Value: kadm.StringPtr("100")},
		}, topic)
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 5; i++ {
		produce(t, cl, &kgo.Record{Topic: topic, Partition: 0, Key: []byte("acc-1"), Value: []byte(fmt.Sprintf("state %d", i))})
		time.Sleep(150 * time.Millisecond) // a segment each, on real Kafka
	}
	values := func() []string {
		var out []string
		for _, r := range readAll(t, b, topic, kgo.ReadCommitted()) {
			if string(r.Key) == "acc-1" {
				out = append(out, string(r.Value))
			}
		}
		return out
	}
	for {
		// The active segment (the last batch, on kfake) is never
		// compacted; records produced after it let the rest go.
		produce(t, cl, &kgo.Record{Topic: topic, Partition: 0, Key: []byte("filler"), Value: []byte("x")})
		if b.compact != nil {
			b.compact()
		}
		got := values()
		if len(got) == 1 {
			if got[0] != "state 5" {
				t.Fatalf("compaction kept %q, want the newest value", got[0])
			}
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("values of acc-1 after 90s: %v; the snapshots topic is not being compacted", got)
		}
		time.Sleep(time.Second)
	}
}
