package soak

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// waitProcessed waits until the processor group of each aggregate type has
// committed offsets at the end of its commands topic: every command
// written has been decided, and its events and result committed with
// those offsets. It returns what is still behind when d passes.
func (s *soak) waitProcessed(ctx context.Context, adm *kadm.Client, aggs []string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		behind, err := s.unprocessed(ctx, adm, aggs)
		if err == nil && behind == "" {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil {
				return err
			}
			return fmt.Errorf("commands not processed after %s: %s", d, behind)
		}
		sleepCtx(ctx, 500*time.Millisecond)
	}
}

func (s *soak) unprocessed(ctx context.Context, adm *kadm.Client, aggs []string) (string, error) {
	behind := ""
	for _, agg := range aggs {
		topic := s.names.Commands(agg)
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return "", err
		}
		committed, err := adm.FetchOffsets(ctx, s.names.ProcessorGroup(agg))
		if err != nil {
			return "", err
		}
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err != nil {
				behind += fmt.Sprintf(" %s/%d: %v;", topic, o.Partition, o.Err)
				return
			}
			at := int64(0)
			if c, ok := committed.Lookup(topic, o.Partition); ok && c.Err == nil {
				at = c.At
			}
			if at < o.Offset {
				behind += fmt.Sprintf(" %s/%d at %d of %d;", topic, o.Partition, at, o.Offset)
			}
		})
	}
	return behind, nil
}

// readTopics reads every record of topics (read_committed) up to their
// last stable offset, once no transaction is open on them (waiting up to
// d for that). Control records and aborted records are left out.
func readTopics(ctx context.Context, opts []kgo.Opt, adm *kadm.Client, d time.Duration, topics ...string) (map[string][]*kgo.Record, error) {
	deadline := time.Now().Add(d)
	sctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	toRead := map[string]map[int32]kgo.Offset{}
	end := map[string]map[int32]int64{}
	left := 0
	for _, topic := range topics {
		stable, err := kafka.StableEnds(sctx, adm, topic, nil, nil)
		if err != nil {
			return nil, err
		}
		for part, off := range stable {
			if off == 0 {
				continue
			}
			if toRead[topic] == nil {
				toRead[topic], end[topic] = map[int32]kgo.Offset{}, map[int32]int64{}
			}
			toRead[topic][part] = kgo.NewOffset().AtStart()
			end[topic][part] = off
			left++
		}
	}
	out := map[string][]*kgo.Record{}
	if left == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(append(opts,
		kgo.ConsumePartitions(toRead),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Markers are kept so that the read reaches the stable offset
		// even when a partition ends with them.
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(300*time.Millisecond),
	)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	done := map[string]map[int32]bool{}
	// A partition can end with records a read_committed reader never
	// sees: kfake, recovering from a SIGKILL, aborts the transactions
	// that were open without writing their abort markers. Nothing is
	// written any more, so a few empty polls in a row mean the end.
	for idle := 0; left > 0 && idle < 5; {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(rctx)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if time.Now().After(deadline.Add(2 * time.Minute)) {
			return nil, fmt.Errorf("reading %v: %d partitions not read to their end in time", topics, left)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("%s/%d: %w", t, p, err)
			}
		})
		switch {
		case ferr != nil:
			idle = 0 // an error is not the end
			sleepCtx(ctx, 200*time.Millisecond)
		case fs.NumRecords() == 0:
			idle++
		default:
			idle = 0
		}
		fs.EachRecord(func(r *kgo.Record) {
			e := end[r.Topic][r.Partition]
			if r.Offset >= e || done[r.Topic][r.Partition] {
				return
			}
			if !r.Attrs.IsControl() {
				out[r.Topic] = append(out[r.Topic], r)
			}
			if r.Offset+1 >= e {
				if done[r.Topic] == nil {
					done[r.Topic] = map[int32]bool{}
				}
				done[r.Topic][r.Partition] = true
				left--
			}
		})
	}
	return out, nil
}
