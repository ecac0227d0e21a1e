package node

import (
	"errors"
	"fmt"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/store"
	"github.com/twmb/franz-go/pkg/kadm"
)

// ErrOtherTopics is returned when the state store was built from other
// topics than the ones the node is about to use.
var ErrOtherTopics = errors.New("strata: the data directory was built from other topics")

// checkTopicIDs makes sure the state store in dataDir was built from the
// topics the node is about to use, and records them on first use. Its
// checkpoints are offsets in those topics: against a topic deleted and
// recreated (its offsets start again at 0) or another cluster's, they would
// skip the new topic's records, and the commands checkpoint would leave
// commands without a result. The broker's topic ID tells: it changes when
// a topic is recreated. ids are the IDs kafka.EnsureTopics found; brokers
// that report none are not checked.
func checkTopicIDs(db *store.DB, ids kafka.TopicIDs, names kafka.Names, types []aggregates.Type, dataDir string) error {
	type role struct{ agg, role, topic string }
	var roles []role
	for _, t := range types {
		roles = append(roles,
			role{t.Name(), "commands", names.Commands(t.Name())},
			role{t.Name(), "events", names.Events(t.Name())},
			role{t.Name(), "results", names.Results(t.Name())})
	}
	b := db.NewBatch()
	var problems []error
	renamed := false
	for _, r := range roles {
		id := ids[r.topic]
		if id == (kadm.TopicID{}) {
			continue
		}
		now := store.Topic{Name: r.topic, ID: id}
		was, ok, err := store.LoadTopic(db.Pebble(), r.agg, r.role)
		if err == nil && !ok {
			err = store.PutTopic(b, r.agg, r.role, now)
		}
		switch {
		case err != nil:
			b.Close()
			return err
		case !ok:
		case was.Name != now.Name:
			if renamed {
				continue // said once
			}
			renamed = true
			problems = append(problems, fmt.Errorf("%w: data directory %s holds %s state built from topic %s, not %s (another --namespace): start with the namespace it was built with, or on an empty data directory to rebuild the state from %s",
				ErrOtherTopics, dataDir, r.agg, was.Name, now.Name, now.Name))
		case was.ID != now.ID:
			problems = append(problems, fmt.Errorf("%w: topic %s was deleted and recreated, or this is another Kafka cluster, since data directory %s was built from it (topic ID %s then, %s now); its offsets no longer mean what the state store recorded: start on an empty data directory (move %s away) to rebuild the state from the topics",
				ErrOtherTopics, now.Name, dataDir, kadm.TopicID(was.ID), kadm.TopicID(now.ID), dataDir))
		}
	}
	if len(problems) > 0 {
		b.Close()
		return errors.Join(problems...)
	}
	return db.Commit(b)
}
