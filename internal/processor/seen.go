package processor

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/bits-and-blooms/bloom/v3"
	"github.com/strata-es/strata/internal/store"
)

// seenFilter answers, without reading Pebble, that a command ID has no
// stored result: a Bloom filter of the IDs of every stored result. Almost
// every command is new, and its deduplication check otherwise costs a
// Pebble Get that misses (a sixth of the processor's CPU in the commands
// benchmark). A "maybe" is checked in Pebble, so a false positive costs a
// read, never a decision.
//
// IDs are added after their results are committed to Pebble (work.commit),
// so a rebuild, which scans Pebble, misses none: an ID committed before
// the scan's snapshot is in the scan, one committed after it is recorded
// in pending. Until a build finishes, every check goes to Pebble. The
// filter is rebuilt, larger, when more IDs were added than it was sized
// for: expired results then also leave it.
type seenFilter struct {
	mu       sync.Mutex
	f        *bloom.BloomFilter // nil while building
	capacity uint               // IDs the filter was sized for
	added    uint               // IDs added since it was built
	pending  []string           // IDs committed while building
	build    func(ctx context.Context, capacity uint) (*bloom.BloomFilter, uint, error)
	log      *slog.Logger
	ctx      context.Context // of the processor's run: builds end with it
	builds   sync.WaitGroup
}

const (
	seenMinCapacity = 1 << 20 // 1.2 MiB of filter
	seenFalseRate   = 0.01
)

// mayHave is false only when id has no stored result.
func (s *seenFilter) mayHave(id string) bool {
	if s == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f == nil || s.f.TestString(id)
}

// committed records ids whose results were just committed to Pebble.
func (s *seenFilter) committed(ids []string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		s.pending = append(s.pending, ids...)
		return
	}
	for _, id := range ids {
		s.f.AddString(id)
	}
	s.added += uint(len(ids))
	if s.added > s.capacity {
		s.rebuildLocked(2 * s.added)
	}
}

// rebuildLocked drops the filter and builds a new one in the background.
func (s *seenFilter) rebuildLocked(capacity uint) {
	ctx := s.ctx
	s.f, s.pending = nil, nil
	s.builds.Go(func() {
		start := time.Now()
		for ctx.Err() == nil {
			f, n, err := s.build(ctx, max(capacity, seenMinCapacity))
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				s.log.Warn("deduplication filter: scan of stored results failed; checking Pebble meanwhile, retrying", "err", err)
				time.Sleep(time.Second)
				continue
			}
			s.mu.Lock()
			for _, id := range s.pending {
				f.AddString(id)
			}
			n += uint(len(s.pending))
			s.f, s.pending, s.added, s.capacity = f, nil, n, max(capacity, seenMinCapacity)
			s.mu.Unlock()
			s.log.Debug("deduplication filter built", "results", n, "took", time.Since(start))
			return
		}
	})
}

// wait waits for a build in progress, which ends with the context it was
// started with.
func (s *seenFilter) wait() {
	if s != nil {
		s.builds.Wait()
	}
}

// newSeenFilter starts building the filter of the stored results of p's
// aggregate type.
func (p *Processor) newSeenFilter(ctx context.Context) *seenFilter {
	prefix := store.ResultKey(p.agg, "")
	s := &seenFilter{log: p.cfg.Log, ctx: ctx}
	s.build = func(ctx context.Context, capacity uint) (*bloom.BloomFilter, uint, error) {
		for {
			f := bloom.NewWithEstimates(capacity, seenFalseRate)
			var n uint
			err := p.cfg.DB.Scan(prefix, func(key, _ []byte) bool {
				f.Add(key[len(prefix):])
				n++
				return n <= capacity && (n%4096 != 0 || ctx.Err() == nil)
			})
			if err != nil || ctx.Err() != nil {
				return nil, 0, err
			}
			if n <= capacity {
				return f, n, nil
			}
			capacity *= 2 // more stored than expected: size it again
		}
	}
	s.mu.Lock()
	s.rebuildLocked(0)
	s.mu.Unlock()
	return s
}
