package processor

import (
	"fmt"
	"testing"

	"github.com/strata-es/strata/internal/store"
)

func TestStateCache(t *testing.T) {
	c := newStateCache(16)
	if _, ok, _ := c.get("a"); ok {
		t.Fatal("empty cache has a")
	}
	_, _, gen := c.get("a")
	c.put(gen, "a", store.Aggregate{Version: 3, State: []byte("v3")})
	if rec, ok, _ := c.get("a"); !ok || rec.Version != 3 {
		t.Fatalf("a = %+v %v, want version 3", rec, ok)
	}

	// A load that read Pebble before a commit must not put the older
	// record back over the committed one.
	c.committed("a", store.Aggregate{Version: 4})
	c.put(gen, "a", store.Aggregate{Version: 3})
	if rec, _, _ := c.get("a"); rec.Version != 4 {
		t.Fatalf("a went back to version %d", rec.Version)
	}

	// A read from before a reset is void: Pebble was written around the
	// cache, and the record read may be older than Pebble now is.
	_, _, stale := c.get("b")
	c.reset()
	if _, ok, _ := c.get("a"); ok {
		t.Fatal("reset kept a")
	}
	c.put(stale, "b", store.Aggregate{Version: 1})
	if _, ok, _ := c.get("b"); ok {
		t.Fatal("a put read before the reset was kept")
	}
	_, _, now := c.get("b")
	c.put(now, "b", store.Aggregate{Version: 1})
	if _, ok, _ := c.get("b"); !ok {
		t.Fatal("a put after the reset was dropped")
	}

	// It stays within its bound.
	for i := range 100 {
		c.committed(fmt.Sprint(i), store.Aggregate{Version: 1})
		if len(c.m) > 16 {
			t.Fatalf("%d entries, bound 16", len(c.m))
		}
	}
	if _, ok, _ := c.get("99"); !ok {
		t.Fatal("the newest entry was evicted")
	}

	// Disabled, it holds nothing and costs nothing.
	var off *stateCache = newStateCache(-1)
	off.committed("a", store.Aggregate{Version: 1})
	if _, ok, _ := off.get("a"); ok {
		t.Fatal("a disabled cache holds a")
	}
}
