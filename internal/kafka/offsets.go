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

// StableEnds returns the last stable offsets of topics once every
// transaction below their high watermarks as of the call is decided.
//
// A read_committed reader that wants everything acknowledged so far
// needs this rather than the last stable offsets alone: a transaction's
// commit returns to its producer once the coordinator has logged it, and
// the markers that move each partition's last stable offset past it are
// written after that. For a moment after an acknowledgement the last
// stable offset can still be below the acknowledged records.
//
// It waits until ctx ends, then names the partitions whose transactions
// were still open.
func StableEnds(ctx context.Context, adm *kadm.Client, topics ...string) (kadm.ListedOffsets, error) {
	var hw kadm.ListedOffsets
	for {
		var err error
		open := ""
		if hw == nil {
			// Errors pass while a broker restarts: list again.
			if hw, err = adm.ListEndOffsets(ctx, topics...); err == nil {
				err = hw.Error()
			}
			if err != nil {
				hw, err = nil, fmt.Errorf("the high watermarks of %v: %w", topics, err)
			}
		}
		if hw != nil {
			stable, serr := adm.ListCommittedOffsets(ctx, topics...)
			if serr == nil {
				serr = stable.Error()
			}
			if serr != nil {
				err = fmt.Errorf("the last stable offsets of %v: %w", topics, serr)
			} else {
				hw.Each(func(h kadm.ListedOffset) {
					if s, ok := stable.Lookup(h.Topic, h.Partition); !ok || s.Offset < h.Offset {
						open += fmt.Sprintf(" %s/%d (stable %d, end %d)", h.Topic, h.Partition, s.Offset, h.Offset)
					}
				})
				if open == "" {
					return stable, nil
				}
			}
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			if err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("transactions still open on%s: %w", open, ctx.Err())
		}
	}
}
