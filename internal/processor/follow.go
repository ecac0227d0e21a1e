package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/store"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// follow keeps the local state of the partitions this node does not own up
// to date, by reading the events topic (read_committed) from each
// partition's checkpoint. Every node thus serves current state for every
// aggregate, and a node given a partition has little to catch up.
//
// The follower and the processor never write one partition at the same
// time. The follower applies a batch under stateMu and skips the
// partitions owned at that moment; the processor, when it is given a
// partition, takes stateMu once before catching it up, so any follower
// batch that could still write it has finished. A partition whose records
// a batch skipped is paused, and read again from its checkpoint once it is
// not owned: the read position has moved past records nobody applied here.
// When a partition is taken away, the follower starts again from its
// checkpoint; the processor's last commit may land after that read, which
// costs nothing: an event at or below an aggregate's version is never
// applied twice, and work.commit never moves an aggregate back.
//
// A Kafka outage is waited out; an error of Pebble's ends follow, and the
// processor with it (a node must not go on serving state it has stopped
// updating).
func (p *Processor) follow(ctx context.Context) error {
	f, err := p.newFollower(ctx)
	if err != nil || f == nil {
		return err
	}
	defer f.cl.Close()
	return f.run(ctx)
}

// newFollower restores the snapshots of the partitions with no local state
// (waiting for Kafka if it is away) and returns a follower reading every
// partition from its checkpoint; nil if ctx ended first.
func (p *Processor) newFollower(ctx context.Context) (*follower, error) {
	log := p.cfg.Log.With("aggregate", p.agg, "topic", p.events)
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		err := p.restoreCold(ctx, p.allPartitions(), log)
		if err == nil || ctx.Err() != nil {
			break
		}
		if !errors.Is(err, errBrokers) {
			return nil, fmt.Errorf("follower: restore snapshots: %w", err)
		}
		log.Warn("follower: restoring snapshots failed; retrying", "retry_in", wait, "err", err)
		sleep(ctx, wait)
	}
	if ctx.Err() != nil {
		return nil, nil
	}
	start := map[int32]kgo.Offset{}
	f := &follower{p: p, log: log, following: map[int32]bool{}, from: map[int32]int64{}, gapAt: map[int32]int64{},
		next: map[int32]int64{}, ends: map[int32]int64{}}
	for part := range p.cfg.Partitions {
		off, err := store.LoadCheckpoint(p.cfg.DB.Pebble(), p.agg, part)
		if err != nil {
			return nil, err
		}
		start[part] = kgo.NewOffset().At(off)
		f.next[part] = off
		f.following[part] = true // the first refollow pauses the owned
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), p.cfg.Opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{p.events: start}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(500*time.Millisecond),
		// The transaction markers move the read position too, so that
		// the position reaches the topic's last stable offset (progress).
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return nil, err
	}
	f.cl = cl
	return f, nil
}

// run follows until ctx ends.
func (f *follower) run(ctx context.Context) error {
	for {
		if err := f.refollow(); err != nil {
			return err
		}
		if f.target == nil {
			f.listEnds(ctx)
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := f.cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(t string, part int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				f.log.Warn("follower fetch error", "partition", part, "err", err)
			}
		})
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			if fp.Err == nil && fp.LastStableOffset > f.ends[fp.Partition] {
				f.ends[fp.Partition] = fp.LastStableOffset
			}
		})
		if fetches.NumRecords() > 0 {
			if err := f.batch(fetches); err != nil {
				return err
			}
		}
		f.progress()
	}
}

// listEnds lists the events topic's last stable offsets: the follower has
// caught up once it has read that far on every partition it follows. A
// failure is tried again on the next turn of the loop.
func (f *follower) listEnds(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	offs, err := kafka.ListOffsets(lctx, kadm.NewClient(f.cl).ListCommittedOffsets, f.p.cfg.Partitions, f.p.events)
	if err != nil {
		if ctx.Err() == nil {
			f.log.Debug("follower: listing the topic's ends failed; trying again", "err", err)
		}
		return
	}
	f.target = map[int32]int64{}
	offs.Each(func(o kadm.ListedOffset) {
		f.target[o.Partition] = o.Offset
		f.ends[o.Partition] = max(f.ends[o.Partition], o.Offset)
	})
}

// progress publishes how far behind the follower is on the partitions it
// follows (those not owned, and not stopped), and whether it has caught
// up with where the topic ended when it started: once it has, it stays
// caught up (a node does not stop serving for a burst of events).
func (f *follower) progress() {
	p := f.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if f.target == nil {
		return
	}
	var lag int64
	caughtUp := true
	for part := range p.cfg.Partitions {
		if p.owned[part] || p.followFailed[part] != "" {
			continue
		}
		lag += max(0, f.ends[part]-f.next[part])
		caughtUp = caughtUp && f.next[part] >= f.target[part]
	}
	p.followLag = lag
	if caughtUp && !p.followCaughtUp {
		f.log.Info("follower caught up: the state of the partitions other instances own is current")
	}
	p.followCaughtUp = p.followCaughtUp || caughtUp
}

// follower is the state of follow's loop.
type follower struct {
	p   *Processor
	cl  *kgo.Client
	log *slog.Logger
	// following: partitions being read (resumed). Others are paused.
	following map[int32]bool
	// from: where a paused partition must be read again from, when that is
	// before its checkpoint (after a gap).
	from map[int32]int64
	// gapAt: the offset of the last gap found per partition, so that a gap
	// found again after reading from before it stops the partition.
	gapAt map[int32]int64
	// next: the read position per partition (past the last record
	// applied, or marker read); ends: the last stable offsets the fetches
	// reported; target: the ends listed at the start (nil until listed).
	next, ends, target map[int32]int64
}

// refollow pauses the partitions to leave alone (owned by the processor,
// or stopped at an event the follower cannot apply) and resumes the others
// from their checkpoints.
func (f *follower) refollow() error {
	p := f.p
	p.mu.Lock()
	var pause, resume []int32
	for part := range p.cfg.Partitions {
		want := !p.owned[part] && p.followFailed[part] == ""
		switch was := f.following[part]; {
		case was && !want:
			pause = append(pause, part)
			f.following[part] = false
		case !was && want:
			resume = append(resume, part)
			f.following[part] = true
		}
	}
	p.mu.Unlock()
	if len(pause) > 0 {
		f.cl.PauseFetchPartitions(map[string][]int32{p.events: pause})
	}
	if len(resume) > 0 {
		offs := map[int32]kgo.EpochOffset{}
		for _, part := range resume {
			off, err := store.LoadCheckpoint(p.cfg.DB.Pebble(), p.agg, part)
			if err != nil {
				return err
			}
			if from, ok := f.from[part]; ok {
				off = min(off, from)
				delete(f.from, part)
			}
			offs[part] = kgo.EpochOffset{Epoch: -1, Offset: off}
			f.next[part] = off
		}
		f.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{p.events: offs})
		f.cl.ResumeFetchPartitions(map[string][]int32{p.events: resume})
	}
	return nil
}

// reread pauses part, to be read again by the next refollow from its
// checkpoint, or from offset from if that is earlier (from < 0: the
// checkpoint).
func (f *follower) reread(part int32, from int64) {
	f.cl.PauseFetchPartitions(map[string][]int32{f.p.events: {part}})
	f.following[part] = false
	if from >= 0 {
		f.from[part] = from
	}
}

// batch applies the records of partitions not owned right now, under
// stateMu. A partition owned meanwhile is read again later from its
// checkpoint. At a gap (events of an aggregate missing before the one
// read) the partition is read again from the aggregate's last applied
// event, once; a partition whose events cannot be applied is stopped and
// reported like the processor's.
func (f *follower) batch(fetches kgo.Fetches) error {
	p := f.p
	p.stateMu.Lock()
	defer p.stateMu.Unlock()
	p.mu.Lock()
	owned := make(map[int32]bool, len(p.owned))
	for part := range p.owned {
		owned[part] = true
	}
	p.mu.Unlock()
	w := p.newWork()
	var commitErr error
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		if commitErr != nil || len(fp.Records) == 0 || !f.following[fp.Partition] {
			return
		}
		if owned[fp.Partition] {
			f.reread(fp.Partition, -1)
			return
		}
		for _, r := range fp.Records {
			if r.Attrs.IsControl() {
				w.checkpoints[fp.Partition] = max(w.checkpoints[fp.Partition], r.Offset+1)
				f.next[fp.Partition] = r.Offset + 1
				continue
			}
			if len(w.events) >= maxWork {
				if cerr := w.commit(); cerr != nil {
					commitErr = cerr
					return
				}
				w = p.newWork()
			}
			err := p.applyEvent(w, r)
			var gap *gapError
			switch {
			case err == nil:
			case errors.As(err, &gap) && !f.gapSeen(fp.Partition, r.Offset):
				f.log.Warn("follower found a gap in an aggregate's events; reading the partition again from its last applied event",
					"partition", fp.Partition, "offset", r.Offset, "from", gap.from, "err", err)
				f.gapAt[fp.Partition] = r.Offset
				f.reread(fp.Partition, gap.from)
				return
			default:
				f.log.Error("follower cannot apply an event; this partition's local state stops here (see /v1/status)", "partition", fp.Partition, "offset", r.Offset, "err", err)
				p.mu.Lock()
				p.followFailed[fp.Partition] = err.Error()
				p.mu.Unlock()
				f.reread(fp.Partition, -1)
				return
			}
			if r.Offset+1 > w.checkpoints[fp.Partition] {
				w.checkpoints[fp.Partition] = r.Offset + 1
			}
			f.next[fp.Partition] = r.Offset + 1
		}
	})
	if commitErr != nil {
		return commitErr
	}
	return w.commit()
}

// gapSeen reports whether the follower found a gap at offset of part
// before, and read the partition again since.
func (f *follower) gapSeen(part int32, offset int64) bool {
	at, ok := f.gapAt[part]
	return ok && at == offset
}
