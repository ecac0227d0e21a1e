package position

import (
	"context"
	"sync"
)

// Tracker records how far a consumer has applied each topic partition and
// lets readers wait for a position. It is safe for concurrent use.
type Tracker struct {
	mu      sync.Mutex
	next    map[TP]int64 // next offset to apply
	changed chan struct{}
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker {
	return &Tracker{next: map[TP]int64{}, changed: make(chan struct{})}
}

// Advance records that everything before next in tp is applied. It never
// moves a partition backwards.
func (t *Tracker) Advance(tp TP, next int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if next <= t.next[tp] {
		return
	}
	t.next[tp] = next
	close(t.changed)
	t.changed = make(chan struct{})
}

// Next returns the next offset to apply in tp.
func (t *Tracker) Next(tp TP) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.next[tp]
}

// Behind returns, for the partitions of p not yet applied, how many offsets
// each is behind. It is empty when p is applied.
func (t *Tracker) Behind(p Position) map[TP]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.behindLocked(p)
}

func (t *Tracker) behindLocked(p Position) map[TP]int64 {
	var out map[TP]int64
	for tp, off := range p {
		if n := t.next[tp]; n <= off {
			if out == nil {
				out = map[TP]int64{}
			}
			out[tp] = off + 1 - n
		}
	}
	return out
}

// Wait blocks until p is applied or ctx ends; it returns how far behind the
// tracker still is (nil when applied).
func (t *Tracker) Wait(ctx context.Context, p Position) map[TP]int64 {
	for {
		t.mu.Lock()
		behind := t.behindLocked(p)
		ch := t.changed
		t.mu.Unlock()
		if behind == nil {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return behind
		}
	}
}
