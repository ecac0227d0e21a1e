package processor

import (
	"log/slog"
	"strconv"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A command record is decided once: the transaction that produces its
// result also commits the group's offset past it, so it is not consumed
// again. That rests on the group's committed offset, which can still be
// behind what was decided: an operator resetting the group's offsets, a
// broker that lost the offsets commit of a transaction whose records it
// kept, a client bug. Deciding such a record again would answer it twice
// (a second result, by deduplication, or a decision anew once its command
// ID left the window). So each node also keeps, per commands partition,
// the offset after the last record a committed transaction decided — the
// commands checkpoint — and skips what is below it, without a result:
// exactly one result per command record, whatever the group's offsets say.
//
// The owner advances the checkpoint as it commits (work.commit). A node
// taking a partition over learns the other owners' progress from the
// results they wrote: each result names the offset of the record it
// answers (kafka.HeaderCommandOffset), read by catchUpResults. Records
// that got no result (forwarded, or dead-lettered without one) are only
// known to their owner; missing them leaves the checkpoint lower, never
// higher, than the truth.

// commandsCheckpoint is the checkpoints' keyspace of the commands topic.
func (p *Processor) commandsCheckpoint() string { return p.agg + ".commands" }

// advanceDecided moves the commands checkpoint of each partition of next
// forward to it, in b; never back.
func (p *Processor) advanceDecided(b *pebble.Batch, next map[int32]int64) error {
	for part, n := range next {
		stored, err := store.LoadCheckpoint(p.cfg.DB.Pebble(), p.commandsCheckpoint(), part)
		if err != nil {
			return err
		}
		if n > stored {
			if err := store.PutCheckpoint(b, p.commandsCheckpoint(), part, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// skipDecided returns the records of recs that no committed transaction
// decided yet, and notes in w how far the batch decides each partition.
// The records it drops are consumed all the same: the batch's transaction
// commits the group's offsets past them.
func (p *Processor) skipDecided(w *work, recs []*kgo.Record, log *slog.Logger) ([]*kgo.Record, error) {
	type skipped struct{ n, from, to int64 }
	decided := map[int32]int64{}
	skips := map[int32]*skipped{}
	keep := recs[:0:0]
	for _, r := range recs {
		next, ok := decided[r.Partition]
		if !ok {
			var err error
			if next, err = store.LoadCheckpoint(p.cfg.DB.Pebble(), p.commandsCheckpoint(), r.Partition); err != nil {
				return nil, err
			}
			decided[r.Partition] = next
		}
		w.commandsNext[r.Partition] = max(w.commandsNext[r.Partition], r.Offset+1)
		if r.Offset >= next {
			keep = append(keep, r)
			continue
		}
		if s := skips[r.Partition]; s == nil {
			skips[r.Partition] = &skipped{n: 1, from: r.Offset, to: r.Offset}
		} else {
			s.n, s.from, s.to = s.n+1, min(s.from, r.Offset), max(s.to, r.Offset)
		}
	}
	for part, s := range skips {
		log.Warn("command records consumed again although a committed transaction decided them (the group's committed offset is behind); skipped without a second result",
			"topic", p.commands, "partition", part, "records", s.n, "from_offset", s.from, "to_offset", s.to, "decided_next", decided[part])
	}
	return keep, nil
}

// resultCommandOffset is the offset of the command record a result record
// answers, if it says (results written before the header have none).
func resultCommandOffset(r *kgo.Record) (int64, bool) {
	for _, h := range r.Headers {
		if h.Key == kafka.HeaderCommandOffset {
			n, err := strconv.ParseInt(string(h.Value), 10, 64)
			return n, err == nil && n >= 0
		}
	}
	return 0, false
}
