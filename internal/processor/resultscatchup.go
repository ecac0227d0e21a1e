package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/strata-es/strata/internal/store"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// catchUpResults stores the results this node lacks of the commands of
// parts, read from the results topic, before the partitions take
// commands. Accepted results are rebuilt from the events too (applyEvent),
// but a rejected or conflicting command leaves no event: without this, a
// resend of it after a takeover, a restart on an empty data directory or
// a crash between the Kafka commit and the Pebble write would be decided
// again, and could be accepted the second time (found by the soak). A
// command's result is written to the results partition of its commands
// partition (resultRecord), so partition p's results are all here.
//
// Each result also says which command record it answers: the commands
// checkpoint moves past it (see skipDecided).
//
// It reads from a per-partition checkpoint to the last stable offset,
// after any open transaction on it ended, as catch-up of the events does.
// resultsCheckpoint is the checkpoints' keyspace of the results topic: the
// next offset of each results partition whose results are all stored. The
// owner of a partition advances it as it commits (work.commit), as the
// only writer of its results partition, so a catch-up reads only what
// other owners wrote. (No aggregate type has a '.'.)
func (p *Processor) resultsCheckpoint() string { return p.agg + ".results" }

func (p *Processor) catchUpResults(ctx context.Context, parts []int32) error {
	cpName := p.resultsCheckpoint()
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), p.cfg.Opts...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	end, err := p.stableEnd(ctx, adm, p.results, parts)
	if err != nil {
		return brokersErr(err)
	}
	toRead := map[int32]kgo.Offset{}
	for _, part := range parts {
		from, err := store.LoadCheckpoint(p.cfg.DB.Pebble(), cpName, part)
		if err != nil {
			return err
		}
		if end[part] > from {
			toRead[part] = kgo.NewOffset().At(from)
		}
	}
	if len(toRead) == 0 {
		return nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{p.results: toRead})
	for idle := 0; len(toRead) > 0 && idle < 10; {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if fs.NumRecords() == 0 {
			// A tail read_committed never delivers (kfake, after a broker
			// crash, aborts transactions without markers) ends it too, but
			// only while the brokers answer: an empty poll because they
			// are away says nothing of the tail, and giving up then would
			// leave refused outcomes out (a resend would be decided anew).
			if idle++; idle == 10 {
				if _, err := adm.ListEndOffsets(ctx, p.results); err != nil {
					p.cfg.Log.Warn("catching up results: the brokers do not answer; waiting for them", "aggregate", p.agg, "topic", p.results, "err", err)
					idle = 0
				}
			}
			continue
		}
		idle = 0
		b := p.cfg.DB.NewBatch()
		var ids []string
		next := map[int32]int64{}
		decided := map[int32]int64{} // commands partition -> next offset (see skipDecided)
		var ferr error
		fs.EachRecord(func(r *kgo.Record) {
			if _, reading := toRead[r.Partition]; !reading || r.Offset >= end[r.Partition] || ferr != nil {
				return
			}
			next[r.Partition] = max(next[r.Partition], r.Offset+1)
			if r.Offset+1 >= end[r.Partition] {
				delete(toRead, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			if off, ok := resultCommandOffset(r); ok {
				decided[r.Partition] = max(decided[r.Partition], off+1)
			}
			var res Result
			if json.Unmarshal(r.Value, &res) != nil || res.CommandID == "" || res.CommandID != string(r.Key) || res.EventsOmitted {
				return // not one of ours, or not whole: the events rebuild accepted ones
			}
			id := string(r.Key)
			if _, ok, err := store.LoadResult(p.cfg.DB.Pebble(), p.agg, id); err != nil || ok {
				ferr = err
				return
			}
			if res.Timestamp < p.cfg.Now().Add(-p.cfg.DedupeWindow).UnixMilli() {
				return // past the deduplication window
			}
			ferr = store.PutResult(b, p.agg, id, res.Timestamp, r.Value)
			ids = append(ids, id)
		})
		for part, n := range next {
			if err := store.PutCheckpoint(b, cpName, part, n); err != nil {
				ferr = err
			}
		}
		if ferr == nil {
			ferr = p.advanceDecided(b, decided)
		}
		if ferr != nil {
			b.Close()
			return fmt.Errorf("catch up %s: %w", p.results, ferr)
		}
		if err := p.cfg.DB.Commit(b); err != nil {
			return err
		}
		p.seen.committed(ids)
	}
	if len(toRead) > 0 {
		p.cfg.Log.Warn("catching up results: the brokers answer but deliver nothing more below the last stable offset; going on without the rest", "aggregate", p.agg, "topic", p.results, "partitions", len(toRead))
	}
	return nil
}
