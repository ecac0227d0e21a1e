package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestEnsureTopicsReturnsTheirIDs: the IDs of topics created and of
// topics that existed, the same for one topic both times.
func TestEnsureTopicsReturnsTheirIDs(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "old"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Each call from its own client, as each node start is: a client
	// that just listed a topic as missing answers from that for a while.
	adm := func() *kadm.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return kadm.NewClient(cl)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	specs := []TopicSpec{{Name: "old", Partitions: 1}, {Name: "new", Partitions: 2}}
	created, err := EnsureTopics(ctx, adm(), -1, specs)
	if err != nil {
		t.Fatal(err)
	}
	again, err := EnsureTopics(ctx, adm(), -1, specs)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if created[s.Name] == (kadm.TopicID{}) {
			t.Errorf("no ID for topic %s: %v", s.Name, created)
		}
		if again[s.Name] != created[s.Name] {
			t.Errorf("topic %s: ID %v, then %v", s.Name, created[s.Name], again[s.Name])
		}
	}
	if created["old"] == created["new"] {
		t.Errorf("two topics with one ID: %v", created)
	}
}
