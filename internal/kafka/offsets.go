package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ListOffsets calls list (kadm's ListEndOffsets, ListCommittedOffsets, …)
// until every partition of topics answers without error, retrying for up
// to 30 seconds while the answer is UNKNOWN_TOPIC_OR_PARTITION or
// partitions are missing. On a multi-broker cluster a topic just created
// is not yet known to every broker; kadm does not retry that.
func ListOffsets(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error), partitions int32, topics ...string) (kadm.ListedOffsets, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		offs, err := list(ctx, topics...)
		if err == nil {
			err = complete(offs, partitions, topics)
		}
		if err == nil {
			return offs, nil
		}
		retriable := errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.NotLeaderForPartition) ||
			errors.Is(err, kerr.LeaderNotAvailable) || errors.Is(err, errMissingPartitions)
		if !retriable || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

var errMissingPartitions = errors.New("partitions missing from the answer")

func complete(offs kadm.ListedOffsets, partitions int32, topics []string) error {
	for _, t := range topics {
		for p := int32(0); p < partitions; p++ {
			o, ok := offs.Lookup(t, p)
			if !ok {
				return fmt.Errorf("%s partition %d: %w", t, p, errMissingPartitions)
			}
			if o.Err != nil {
				return fmt.Errorf("%s partition %d: %w", t, p, o.Err)
			}
		}
	}
	return nil
}
