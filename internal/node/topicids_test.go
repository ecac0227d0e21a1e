package node

import (
	"errors"
	"strings"
	"testing"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/store"
	"github.com/twmb/franz-go/pkg/kadm"
)

// TestCheckTopicIDs: a data directory takes the topics it first sees, and
// then refuses recreated topics and another namespace's; brokers without
// topic IDs are not checked, and record nothing.
func TestCheckTopicIDs(t *testing.T) {
	db, err := store.Open(t.TempDir(), store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	types := []aggregates.Type{account.Type}
	names := kafka.Names{Namespace: "a"}
	ids := func(n kafka.Names, first byte) kafka.TopicIDs {
		return kafka.TopicIDs{
			n.Commands("account"): {first, 1},
			n.Events("account"):   {first, 2},
			n.Results("account"):  {first, 3},
		}
	}
	check := func(n kafka.Names, ids kafka.TopicIDs) error {
		return checkTopicIDs(db, ids, n, types, "/data")
	}

	if err := check(names, kafka.TopicIDs{}); err != nil {
		t.Fatalf("a broker without topic IDs: %v", err)
	}
	if err := check(names, ids(names, 7)); err != nil {
		t.Fatalf("first use, after a broker without IDs: %v", err)
	}
	if err := check(names, ids(names, 7)); err != nil {
		t.Fatalf("the same topics again: %v", err)
	}

	recreated := ids(names, 7)
	recreated[names.Events("account")] = kadm.TopicID{9}
	err = check(names, recreated)
	if !errors.Is(err, ErrOtherTopics) {
		t.Fatalf("a recreated events topic: %v, want ErrOtherTopics", err)
	}
	for _, msg := range []string{"topic " + names.Events("account") + " was deleted and recreated", "data directory /data", "start on an empty data directory"} {
		if !strings.Contains(err.Error(), msg) {
			t.Errorf("error lacks %q: %v", msg, err)
		}
	}
	if strings.Contains(err.Error(), names.Commands("account")) {
		t.Errorf("error names the commands topic, which is the same: %v", err)
	}

	other := kafka.Names{Namespace: "b"}
	err = check(other, ids(other, 8))
	if !errors.Is(err, ErrOtherTopics) || strings.Count(err.Error(), "another --namespace") != 1 {
		t.Fatalf("another namespace: %v, want ErrOtherTopics said once", err)
	}
	// Refusals record nothing: the first topics still pass.
	if err := check(names, ids(names, 7)); err != nil {
		t.Fatalf("the first topics after refusals: %v", err)
	}
}
