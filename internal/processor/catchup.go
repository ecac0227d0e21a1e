package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/store"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// errBrokers marks a catch-up that failed because Kafka did not answer in
// time (a broker restarting, a cluster down): catchUpPending retries it
// rather than stopping the node, since nothing is wrong that waiting will
// not fix. Errors without it (Pebble, an event that cannot be applied) do
// not pass by themselves.
var errBrokers = errors.New("the brokers did not answer")

func brokersErr(err error) error { return fmt.Errorf("%w: %w", errBrokers, err) }

// restoreCold restores, from the snapshots topic, the partitions of parts
// with no state here yet.
func (p *Processor) restoreCold(ctx context.Context, parts []int32, log *slog.Logger) error {
	// restoreSnapshots checks again under stateMu; this look spares
	// taking the lock when every partition has state.
	cold, err := p.cold(parts)
	if err != nil || len(cold) == 0 {
		return err
	}
	start := time.Now()
	p.stateMu.Lock()
	n, err := p.restoreSnapshots(ctx, p.cfg.Opts, cold, log)
	p.stateMu.Unlock()
	if err != nil {
		return err
	}
	if n > 0 {
		log.Info("restored snapshots", "aggregates", n, "partitions", len(cold), "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// allPartitions returns 0 to Partitions-1.
func (p *Processor) allPartitions() []int32 {
	parts := make([]int32, p.cfg.Partitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	return parts
}

// cold returns the partitions of parts with no checkpoint: no event of
// theirs applied here yet.
func (p *Processor) cold(parts []int32) ([]int32, error) {
	var out []int32
	for _, part := range parts {
		off, err := store.LoadCheckpoint(p.cfg.DB.Pebble(), p.agg, part)
		if err != nil {
			return nil, err
		}
		if off == 0 {
			out = append(out, part)
		}
	}
	return out, nil
}

// gapError is an event whose aggregate's previous events were not applied
// first. from is where the events after the last one applied begin in the
// partition (0 when none was).
type gapError struct {
	msg  string
	from int64
}

func (e *gapError) Error() string { return e.msg }

// catchUp brings Pebble up to date with events partitions parts: from each
// partition's checkpoint to the end of what is committed. See the package
// doc for why it waits for open transactions first. A partition whose
// events cannot be applied (an event this build cannot read, a gap) is
// returned in failed with the reason, applied up to the event before; the
// others go on. An error means none can (Kafka or Pebble failed).
func (p *Processor) catchUp(ctx context.Context, parts []int32) (failed map[int32]error, err error) {
	if err := p.fault(p.cfg.Faults.BeforeCatchUp, len(parts)); err != nil {
		return nil, brokersErr(err)
	}
	start := time.Now()
	from := map[int32]int64{}
	for _, part := range parts {
		off, err := store.LoadCheckpoint(p.cfg.DB.Pebble(), p.agg, part)
		if err != nil {
			return nil, err
		}
		from[part] = off
	}
	log := p.cfg.Log.With("aggregate", p.agg, "topic", p.events)
	if err := p.restoreCold(ctx, parts, log); err != nil {
		return nil, fmt.Errorf("restore snapshots: %w", err)
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), p.cfg.Opts...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records (commit and abort markers) are kept so that the
		// read always reaches the last stable offset, even when the tail
		// of the partition is markers and aborted records only.
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	end, err := p.stableEnd(ctx, kadm.NewClient(cl), p.events, parts)
	if err != nil {
		return nil, brokersErr(err)
	}
	toRead := map[int32]kgo.Offset{}
	var total int64
	for _, part := range parts {
		if end[part] > from[part] {
			toRead[part] = kgo.NewOffset().At(from[part])
			total += end[part] - from[part]
		} else {
			p.cfg.Applied.Advance(p.tp(part), from[part])
		}
	}
	if len(toRead) == 0 {
		return nil, nil
	}
	log.Info("catching up state from the events topic", "partitions", len(toRead), "offsets", total)
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{p.events: toRead})
	var applied int64
	lastReport := time.Now()
	for len(toRead) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return failed, ctx.Err()
		}
		var ferr error
		fetches.EachError(func(t string, part int32, err error) {
			ferr = fmt.Errorf("catch up %s partition %d: %w", t, part, err)
		})
		if ferr != nil {
			log.Warn("fetch error during catch-up; retrying", "err", ferr)
			continue
		}
		w := p.newWork()
		var done []int32
		var err error
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			if err != nil {
				return
			}
			if _, reading := toRead[fp.Partition]; !reading {
				return
			}
			for _, r := range fp.Records {
				if r.Offset >= end[fp.Partition] {
					break
				}
				if len(w.events) >= maxWork {
					// Keep each Pebble batch well under the memtable.
					if cerr := p.commitLocked(w); cerr != nil {
						err = cerr
						return
					}
					w = p.newWork()
				}
				if !r.Attrs.IsControl() {
					if aerr := p.applyEvent(w, r); aerr != nil {
						if failed == nil {
							failed = map[int32]error{}
						}
						failed[fp.Partition] = aerr
						done = append(done, fp.Partition)
						log.Error("cannot apply an event; this partition stops here until it is fixed (see /v1/status)", "partition", fp.Partition, "offset", r.Offset, "err", aerr)
						return
					}
					applied++
				}
				if r.Offset+1 > w.checkpoints[fp.Partition] {
					w.checkpoints[fp.Partition] = r.Offset + 1
				}
				if r.Offset+1 >= end[fp.Partition] {
					done = append(done, fp.Partition)
					break
				}
			}
		})
		if err == nil {
			err = p.commitLocked(w)
		}
		if err != nil {
			return failed, err
		}
		for _, part := range done {
			delete(toRead, part)
		}
		if time.Since(lastReport) > 2*time.Second {
			log.Info("catching up", "events", applied, "of_offsets", total, "elapsed", time.Since(start).Round(time.Second))
			lastReport = time.Now()
		}
	}
	log.Info("caught up", "events", applied, "took", time.Since(start).Round(time.Millisecond))
	return failed, nil
}

// stableEnd returns, per partition of parts, an offset of topic up to
// which every transaction is decided: it snapshots the high watermarks,
// then waits until the last stable offsets reach them. A previous owner's
// transaction, committed or left open when it died, ends by its markers
// or by the transaction timeout; past that, it gives up (and the caller
// starts over).
func (p *Processor) stableEnd(ctx context.Context, adm *kadm.Client, topic string, parts []int32) (map[int32]int64, error) {
	wctx, cancel := context.WithTimeout(ctx, p.cfg.TxnTimeout+10*time.Second)
	defer cancel()
	end, err := kafka.StableEnds(wctx, adm, topic, parts, func(open string, waited time.Duration) {
		p.cfg.Log.Warn("catching up: waiting for an open transaction to end", "aggregate", p.agg, "topic", topic,
			"partitions", open, "waited", waited.Round(time.Second))
	})
	switch {
	case err == nil:
		return end, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case wctx.Err() != nil:
		return nil, fmt.Errorf("%s: a transaction stayed open past the transaction timeout (is a strata instance with another instance ID writing it?): %w", topic, err)
	}
	return nil, err
}

// applyEvent applies one events-topic record to w. An event at or below
// the aggregate's version is covered by a snapshot restored before: it is
// only indexed (history, deduplication), without being decoded.
func (p *Processor) applyEvent(w *work, r *kgo.Record) error {
	where := func() string { return fmt.Sprintf("%s partition %d offset %d", r.Topic, r.Partition, r.Offset) }
	vs, _ := header(r, kafka.HeaderVersion)
	version, err := strconv.ParseUint(vs, 10, 64)
	if err != nil || version == 0 {
		return fmt.Errorf("event at %s: bad %s header %q", where(), kafka.HeaderVersion, vs)
	}
	id := string(r.Key)
	if id == "" {
		// Strata writes every event keyed by its aggregate's ID; a record
		// without one is not an event of any aggregate.
		return fmt.Errorf("event at %s: no key, so no aggregate ID", where())
	}
	a, err := w.load(id)
	if err != nil {
		return err
	}
	commandID, _ := header(r, kafka.HeaderCommandID)
	out := &eventOut{entry: store.Event{
		Version:   version,
		Partition: r.Partition,
		Offset:    r.Offset,
		Timestamp: r.Timestamp.UnixMilli(),
		Type:      eventType(r),
		CommandID: commandID,
		Payload:   r.Value,
	}}
	var res *Result
	if commandID != "" && r.Timestamp.After(p.cfg.Now().Add(-p.cfg.DedupeWindow)) {
		// Rebuild the deduplication entry from the events themselves.
		if res = w.results[commandID]; res == nil {
			res = &Result{CommandID: commandID, Aggregate: p.agg, AggregateID: id, Status: StatusAccepted, Timestamp: out.entry.Timestamp, FirstVersion: version}
			w.results[commandID] = res
		}
		res.Version = version
		// A command's events share one partition; the last one's offset
		// covers them all. The token is made once, at commit.
		res.rebuilt, res.eventsPartition, res.lastOffset = true, r.Partition, r.Offset
	}
	switch {
	case version <= a.version:
		out.indexOnly = true
		out.agg = a
		w.events = append(w.events, out)
		return nil
	case version != a.version+1:
		g := &gapError{msg: fmt.Sprintf("event at %s: %s %s version %d follows version %d: the events topic has a gap", where(), p.agg, id, version, a.version)}
		if a.version > 0 {
			g.from = a.offset + 1
		}
		return g
	}
	evs, ver, err := p.cfg.Codec.DecodeEvents(r.Value)
	if err != nil {
		fp := ""
		if ver != nil {
			fp = fmt.Sprintf(" (written with %s, fingerprint %016x)", ver.File, ver.Fingerprint)
		}
		return fmt.Errorf("event at %s%s: %w; stopping rather than skipping it", where(), fp, err)
	}
	prev := a.version
	w.apply(a, evs, out)
	p.snapshotDue(w, a, prev)
	return nil
}

// restoreSnapshots loads the latest snapshot of every aggregate of the
// given partitions from the snapshots topic into w: the state, version and
// events offset. The events read after it then only fill in the event index
// up to each snapshot, and apply what follows.
//
// The caller holds stateMu. A partition with a checkpoint by then (the
// processor or the follower applied events of it meanwhile) is left
// alone, and no aggregate is moved back to an older version.
func (p *Processor) restoreSnapshots(ctx context.Context, opts []kgo.Opt, parts []int32, log *slog.Logger) (int, error) {
	parts, err := p.cold(parts)
	if err != nil || len(parts) == 0 {
		return 0, err
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	end, err := kafka.ListOffsets(ctx, adm.ListCommittedOffsets, p.cfg.Partitions, p.snapshots)
	if err != nil {
		return 0, brokersErr(fmt.Errorf("list offsets of %s: %w", p.snapshots, err))
	}
	start, err := kafka.ListOffsets(ctx, adm.ListStartOffsets, p.cfg.Partitions, p.snapshots)
	if err != nil {
		return 0, brokersErr(fmt.Errorf("list offsets of %s: %w", p.snapshots, err))
	}
	toRead := map[int32]kgo.Offset{}
	stop := map[int32]int64{}
	for _, part := range parts {
		e, _ := end.Lookup(p.snapshots, part)
		s, _ := start.Lookup(p.snapshots, part)
		if e.Offset > s.Offset {
			toRead[part] = kgo.NewOffset().At(s.Offset)
			stop[part] = e.Offset
		}
	}
	if len(toRead) == 0 {
		return 0, nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{p.snapshots: toRead})
	latest := map[string]*kgo.Record{}
	for len(toRead) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		var ferr error
		fetches.EachError(func(t string, part int32, err error) { ferr = err })
		if ferr != nil {
			log.Warn("fetch error reading snapshots; retrying", "err", ferr)
			continue
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset >= stop[r.Partition] {
				return
			}
			if r.Offset+1 >= stop[r.Partition] {
				delete(toRead, r.Partition)
			}
			if r.Attrs.IsControl() || r.Value == nil {
				return
			}
			if prev := latest[string(r.Key)]; prev == nil || snapVersion(r) > snapVersion(prev) {
				latest[string(r.Key)] = r
			}
		})
	}
	b := p.cfg.DB.NewBatch()
	for id, r := range latest {
		if stored, ok, err := store.LoadAggregate(p.cfg.DB.Pebble(), p.agg, id); err != nil {
			b.Close()
			return 0, err
		} else if ok && stored.Version >= snapVersion(r) {
			delete(latest, id)
			continue
		}
		where := fmt.Sprintf("snapshot at %s partition %d offset %d", r.Topic, r.Partition, r.Offset)
		if _, err := p.cfg.Codec.DecodeState(r.Value); err != nil {
			b.Close()
			return 0, fmt.Errorf("%s: %w", where, err)
		}
		offset, err := strconv.ParseInt(headerOr(r, kafka.HeaderEventsOffset, ""), 10, 64)
		if err != nil {
			b.Close()
			return 0, fmt.Errorf("%s: bad %s header", where, kafka.HeaderEventsOffset)
		}
		rec := store.Aggregate{Version: snapVersion(r), Partition: r.Partition, Offset: offset, Timestamp: r.Timestamp.UnixMilli(), State: r.Value}
		if err := store.PutAggregate(b, p.agg, id, &rec); err != nil {
			b.Close()
			return 0, err
		}
		if err := store.PutSnapshot(b, p.agg, id, rec.Version, r.Value); err != nil {
			b.Close()
			return 0, err
		}
	}
	if err := p.cfg.DB.Commit(b); err != nil {
		return 0, err
	}
	p.cache.reset() // the snapshots bypassed it
	ids := make([]string, 0, len(latest))
	for id := range latest {
		ids = append(ids, id)
	}
	p.exists.committed(ids)
	return len(latest), nil
}

func snapVersion(r *kgo.Record) uint64 {
	v, _ := strconv.ParseUint(headerOr(r, kafka.HeaderVersion, "0"), 10, 64)
	return v
}

func headerOr(r *kgo.Record, key, def string) string {
	if v, ok := header(r, key); ok {
		return v
	}
	return def
}

// eventType is the type a stored event was written as: its header, which
// names it even when an upcaster now reads it as something else.
func eventType(r *kgo.Record) string {
	t, _ := header(r, kafka.HeaderEventType)
	return t
}

// maxWork is the most events one catch-up commit holds: enough to amortize
// a Pebble commit, small enough to stay an ordinary batch.
const maxWork = 8192

// commitLocked commits w under stateMu.
func (p *Processor) commitLocked(w *work) error {
	p.stateMu.Lock()
	defer p.stateMu.Unlock()
	return w.commit()
}
