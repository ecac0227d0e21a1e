package processor

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/bits-and-blooms/bloom/v3"
)

// keyFilter answers, without reading Pebble, that an ID has no record
// under a prefix of the state store: a Bloom filter of the IDs stored
// there. The processor keeps two: of the command IDs with a stored result,
// since almost every command is new and its deduplication check otherwise
// costs a Pebble Get that misses (a sixth of the processor's CPU in the
// commands benchmark); and of the aggregates stored, since a command that
// creates one otherwise pays the same miss. Under write load those misses
// are dear: they read the filter blocks of sstables compactions just
// wrote. A "maybe" is checked in Pebble, so a false positive costs a read,
// never a decision.
//
// IDs are added after their records are committed to Pebble, so a
// rebuild, which scans Pebble, misses none: an ID committed before the
// scan's snapshot is in the scan, one committed after it is recorded in
// pending. Until a build finishes, every check goes to Pebble. The filter
// is rebuilt, larger, when more IDs were added than it was sized for:
// deleted records (expired results) then also leave it.
type keyFilter struct {
	mu       sync.Mutex
	f        *bloom.BloomFilter // nil while building
	capacity uint               // IDs the filter was sized for
	added    uint               // IDs added since it was built
	pending  []string           // IDs committed while building
	build    func(ctx context.Context, capacity uint) (*bloom.BloomFilter, uint, error)
	name     string
	log      *slog.Logger
	ctx      context.Context // of the processor's run: builds end with it
	builds   sync.WaitGroup
}

const (
	filterMinCapacity = 1 << 20 // 1.2 MiB of filter
	filterFalseRate   = 0.01
)

// mayHave is false only when id has no stored result.
func (s *keyFilter) mayHave(id string) bool {
	if s == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f == nil || s.f.TestString(id)
}

// committed records ids whose results were just committed to Pebble.
func (s *keyFilter) committed(ids []string) {
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
func (s *keyFilter) rebuildLocked(capacity uint) {
	ctx := s.ctx
	s.f, s.pending = nil, nil
	s.builds.Go(func() {
		start := time.Now()
		for ctx.Err() == nil {
			f, n, err := s.build(ctx, max(capacity, filterMinCapacity))
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				s.log.Warn("filter: scan of the state store failed; checking Pebble meanwhile, retrying", "filter", s.name, "err", err)
				time.Sleep(time.Second)
				continue
			}
			s.mu.Lock()
			for _, id := range s.pending {
				f.AddString(id)
			}
			n += uint(len(s.pending))
			s.f, s.pending, s.added, s.capacity = f, nil, n, max(capacity, filterMinCapacity)
			s.mu.Unlock()
			s.log.Debug("filter built", "filter", s.name, "ids", n, "took", time.Since(start))
			return
		}
	})
}

// wait waits for a build in progress, which ends with the context it was
// started with.
func (s *keyFilter) wait() {
	if s != nil {
		s.builds.Wait()
	}
}

// newKeyFilter starts building the filter of the IDs stored under prefix
// (which ends with the separator before an ID).
func (p *Processor) newKeyFilter(ctx context.Context, name string, prefix []byte) *keyFilter {
	s := &keyFilter{name: name, log: p.cfg.Log, ctx: ctx}
	s.build = func(ctx context.Context, capacity uint) (*bloom.BloomFilter, uint, error) {
		for {
			f := bloom.NewWithEstimates(capacity, filterFalseRate)
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
