package processor

import (
	"sync"

	"github.com/strata-es/strata/internal/store"
)

// stateCache keeps the stored records of recently used aggregates in
// memory, in front of Pebble: under load a command's state read otherwise
// costs a Pebble Get whose blocks compactions keep evicting (a third of
// the processor's CPU in the commands benchmark). It holds encoded
// records, never decoded state, so a decision that evolves a state it
// loaded cannot change what the cache holds, and an aborted transaction
// leaves nothing behind.
//
// It is written through by every commit to Pebble (work.commit) and keeps,
// per aggregate, the highest version it was given, so a load racing a
// commit cannot put an older record back. Anything that writes aggregates
// to Pebble some other way resets it.
type stateCache struct {
	mu         sync.Mutex
	m          map[string]store.Aggregate
	max        int
	generation uint64
}

// newStateCache returns a cache of up to max aggregates; nil (no cache)
// when max is not positive.
func newStateCache(max int) *stateCache {
	if max <= 0 {
		return nil
	}
	return &stateCache{m: make(map[string]store.Aggregate, min(max, 1<<16)), max: max}
}

// get returns the cached record of id, and the generation to pass to put
// when the caller reads it from Pebble instead.
func (c *stateCache) get(id string) (store.Aggregate, bool, uint64) {
	if c == nil {
		return store.Aggregate{}, false, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rec, ok := c.m[id]
	return rec, ok, c.generation
}

// put records rec, read from Pebble, as id's, unless the cache was reset
// since generation gen or holds a newer version already.
func (c *stateCache) put(gen uint64, id string, rec store.Aggregate) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.generation {
		c.putLocked(id, rec)
	}
}

// committed records rec, just committed to Pebble, as id's.
func (c *stateCache) committed(id string, rec store.Aggregate) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(id, rec)
}

func (c *stateCache) putLocked(id string, rec store.Aggregate) {
	if old, ok := c.m[id]; ok && old.Version >= rec.Version {
		return
	}
	if len(c.m) >= c.max {
		// Evict an eighth, at random (map order): cheap, and under a
		// uniform load as good as LRU.
		n := c.max / 8
		for k := range c.m {
			delete(c.m, k)
			if n--; n <= 0 {
				break
			}
		}
	}
	c.m[id] = rec
}

// reset empties the cache and makes puts of records read before it void.
func (c *stateCache) reset() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
	c.generation++
}
