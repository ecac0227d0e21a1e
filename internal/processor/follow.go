package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strata-es/strata/internal/store"
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
// batch that could still write it has finished. When a partition is taken
// away, the follower starts again from its checkpoint; the processor's last
// commit may land after that read, which costs nothing: an event at or
// below an aggregate's version is never applied twice.
func (p *Processor) follow(ctx context.Context) error {
	log := p.cfg.Log.With("aggregate", p.agg, "topic", p.events)
	all := make([]int32, p.cfg.Partitions)
	for i := range all {
		all[i] = int32(i)
	}
	var cold []int32
	start := map[int32]kgo.Offset{}
	for _, part := range all {
		off, err := store.LoadCheckpoint(p.cfg.DB.Pebble(), p.agg, part)
		if err != nil {
			return err
		}
		if off == 0 {
			cold = append(cold, part)
		}
		start[part] = kgo.NewOffset().At(off)
	}
	if len(cold) > 0 {
		t0 := time.Now()
		p.stateMu.Lock()
		n, err := p.restoreSnapshots(ctx, p.cfg.Opts, cold, log)
		p.stateMu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("follower: restore snapshots: %w", err)
		}
		if n > 0 {
			log.Info("restored snapshots", "aggregates", n, "partitions", len(cold), "took", time.Since(t0).Round(time.Millisecond))
		}
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), p.cfg.Opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{p.events: start}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	following := map[int32]bool{}
	for _, part := range all {
		following[part] = true
	}
	for {
		if err := p.refollow(cl, following); err != nil {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(t string, part int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				log.Warn("follower fetch error", "partition", part, "err", err)
			}
		})
		if fetches.NumRecords() == 0 {
			continue
		}
		if err := p.followBatch(fetches, log); err != nil {
			return err
		}
	}
}

// refollow pauses the partitions the processor owns and, for those it gave
// up, resumes reading from the checkpoint it left.
func (p *Processor) refollow(cl *kgo.Client, following map[int32]bool) error {
	p.mu.Lock()
	var pause, resume []int32
	for part, was := range following {
		owned := p.owned[part]
		switch {
		case was && owned:
			pause = append(pause, part)
			following[part] = false
		case !was && !owned:
			resume = append(resume, part)
			following[part] = true
		}
	}
	p.mu.Unlock()
	if len(pause) > 0 {
		cl.PauseFetchPartitions(map[string][]int32{p.events: pause})
	}
	if len(resume) > 0 {
		offs := map[int32]kgo.EpochOffset{}
		for _, part := range resume {
			off, err := store.LoadCheckpoint(p.cfg.DB.Pebble(), p.agg, part)
			if err != nil {
				return err
			}
			offs[part] = kgo.EpochOffset{Epoch: -1, Offset: off}
		}
		cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{p.events: offs})
		cl.ResumeFetchPartitions(map[string][]int32{p.events: resume})
	}
	return nil
}

// followBatch applies the records of partitions not owned right now, under
// stateMu. A partition whose events cannot be applied is paused and
// reported like the processor's.
func (p *Processor) followBatch(fetches kgo.Fetches, log interface {
	Error(string, ...any)
}) error {
	p.stateMu.Lock()
	defer p.stateMu.Unlock()
	p.mu.Lock()
	owned := make(map[int32]bool, len(p.owned))
	for part := range p.owned {
		owned[part] = true
	}
	failed := make(map[int32]bool, len(p.followFailed))
	for part := range p.followFailed {
		failed[part] = true
	}
	p.mu.Unlock()
	w := p.newWork()
	var commitErr error
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		if owned[fp.Partition] || failed[fp.Partition] || commitErr != nil {
			return
		}
		for _, r := range fp.Records {
			if len(w.events) >= maxWork {
				if cerr := w.commit(); cerr != nil {
					commitErr = cerr
					return
				}
				w = p.newWork()
			}
			if err := p.applyEvent(w, r); err != nil {
				log.Error("follower cannot apply an event; this partition's local state stops here (see /v1/status)", "partition", fp.Partition, "offset", r.Offset, "err", err)
				p.mu.Lock()
				p.followFailed[fp.Partition] = err.Error()
				p.mu.Unlock()
				failed[fp.Partition] = true
				return
			}
			if r.Offset+1 > w.checkpoints[fp.Partition] {
				w.checkpoints[fp.Partition] = r.Offset + 1
			}
		}
	})
	if commitErr != nil {
		return commitErr
	}
	return w.commit()
}
