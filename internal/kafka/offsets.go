package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
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
	parts := make([]int32, partitions)
	for p := range parts {
		parts[p] = int32(p)
	}
	for _, t := range topics {
		if _, err := pick(offs, t, parts); err != nil {
			return err
		}
	}
	return nil
}

// pick returns the offsets of topic's partitions parts from offs; a
// partition missing from it or in error is an error.
func pick(offs kadm.ListedOffsets, topic string, parts []int32) (map[int32]int64, error) {
	out := make(map[int32]int64, len(parts))
	for _, part := range parts {
		o, ok := offs.Lookup(topic, part)
		if !ok {
			return nil, fmt.Errorf("%s partition %d: %w", topic, part, errMissingPartitions)
		}
		if o.Err != nil {
			return nil, fmt.Errorf("%s partition %d: %w", topic, part, o.Err)
		}
		out[part] = o.Offset
	}
	return out, nil
}

// StableEnds returns the last stable offsets of topic's partitions parts
// (all of them when parts is nil) once every transaction below their high
// watermarks as of the call is decided.
//
// A read_committed reader that wants everything acknowledged so far
// needs this rather than the last stable offsets alone: a transaction's
// commit returns to its producer once the coordinator has logged it, and
// the markers that move each partition's last stable offset past it are
// written after that. For a moment after an acknowledgement the last
// stable offset can still be below the acknowledged records. A new owner
// of partitions needs it too, to read what its predecessor committed.
//
// Errors are retried until ctx ends (a broker restarting); then the error
// names the partitions whose transactions were still open. While it waits
// for them, waiting (when not nil) is told every 5 seconds.
func StableEnds(ctx context.Context, adm *kadm.Client, topic string, parts []int32, waiting func(open string, waited time.Duration)) (map[int32]int64, error) {
	start, told := time.Now(), time.Now()
	var hw map[int32]int64
	open := "" // as of the last listing that answered
	for {
		var err error
		if hw == nil {
			hw, err = listPartitions(ctx, adm.ListEndOffsets, topic, parts)
		}
		if hw != nil {
			var stable map[int32]int64
			if stable, err = listPartitions(ctx, adm.ListCommittedOffsets, topic, parts); err == nil {
				open = ""
				for _, part := range slices.Sorted(maps.Keys(hw)) {
					if stable[part] < hw[part] {
						open += fmt.Sprintf(" %s/%d (stable %d, end %d)", topic, part, stable[part], hw[part])
					}
				}
				if open == "" {
					return stable, nil
				}
			}
		}
		if open != "" && waiting != nil && time.Since(told) >= 5*time.Second {
			waiting(strings.TrimSpace(open), time.Since(start))
			told = time.Now()
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			if open == "" { // it never got as far as the last stable offsets
				if err == nil {
					err = ctx.Err()
				}
				return nil, err
			}
			return nil, fmt.Errorf("transactions still open on%s: %w", open, ctx.Err())
		}
	}
}

// listPartitions lists the offsets of topic's partitions parts (all of
// them when nil) with list; see pick.
func listPartitions(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error), topic string, parts []int32) (map[int32]int64, error) {
	offs, err := list(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	if parts == nil {
		if err := offs.Error(); err != nil {
			return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
		}
		for part := range offs[topic] {
			parts = append(parts, part)
		}
	}
	return pick(offs, topic, parts)
}
