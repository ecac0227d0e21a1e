package node

import (
	"context"
	"errors"
	"fmt"
	"time"

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
// a topic is recreated. Brokers that report no IDs are not checked.
func checkTopicIDs(ctx context.Context, adm *kadm.Client, db *store.DB, names kafka.Names, types []aggregates.Type, dataDir string) error {
	type role struct{ agg, role, topic string }
	var roles []role
	var topics []string
	for _, t := range types {
		for _, r := range []role{
			{t.Name(), "commands", names.Commands(t.Name())},
			{t.Name(), "events", names.Events(t.Name())},
			{t.Name(), "results", names.Results(t.Name())},
		} {
			roles = append(roles, r)
			topics = append(topics, r.topic)
		}
	}
	// Topics just created are not listed by every broker at once.
	var tds kadm.TopicDetails
	for {
		var err error
		if tds, err = adm.ListTopics(ctx, topics...); err != nil {
			return fmt.Errorf("list topics: %w", err)
		}
		missing := ""
		for _, tp := range topics {
			if td, ok := tds[tp]; !ok || td.Err != nil {
				missing = tp
			}
		}
		if missing == "" {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("list topics: topic %s not listed: %w", missing, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	b := db.NewBatch()
	var problems []error
	renamed := false
	for _, r := range roles {
		td := tds[r.topic]
		if td.ID == (kadm.TopicID{}) {
			continue
		}
		now := store.Topic{Name: r.topic, ID: td.ID}
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
