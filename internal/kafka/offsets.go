package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ListOffsets calls list (kadm's ListEndOffsets, ListCommittedOffsets, …)
// until every partition of topics answers without error, retrying for up
// to 30 seconds while the error is one that passes (see retriable).
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
		if !retriable(err) || time.Now().After(deadline) || ctx.Err() != nil {
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

// retriable reports whether a ListOffsets error passes by itself:
//   - on a multi-broker cluster a topic just created is not yet known to
//     every broker (UNKNOWN_TOPIC_OR_PARTITION, partitions missing), and
//     kadm does not retry that;
//   - while a broker restarts, its partitions' leadership moves (Kafka's
//     retriable codes, NOT_LEADER_FOR_PARTITION among them) and the
//     request for its shard fails to dial it until the metadata names the
//     new leader: a network error. kgo leaves dial errors to its callers
//     (kgo.IsRetryableBrokerErr). Without this, one broker of three
//     restarting stopped a node that was catching up (found by the soak).
//   - a broker that closes its connections as it stops answers EOF, which
//     kgo counts among the retryable broker errors too.
func retriable(err error) bool {
	var netErr net.Error
	return errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, errMissingPartitions) ||
		kerr.IsRetriable(err) || errors.As(err, &netErr) || kgo.IsRetryableBrokerErr(err)
}

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
