package projections

import (
	"testing"
	"time"
)

type flatRow struct {
	ID    string    `json:"id"`
	N     int64     `json:"n"`
	F     float64   `json:"f"`
	At    time.Time `json:"at"`
	Inner struct {
		OK bool `json:"ok"`
	} `json:"inner"`
	Codes [2]string `json:"codes"`
}

func TestFlatTypes(t *testing.T) {
	for _, tc := range []struct {
		row  any
		flat bool
	}{
		{flatRow{}, true},
		{struct{ Items []string }{}, false},   // a copy shares the array
		{struct{ M map[string]int }{}, false}, // and the map
		{struct{ P *int }{}, false},           // and the pointee
		{struct{ hidden int }{}, false},       // JSON drops it
		{struct {
			X int `json:"-"`
		}{}, false}, // and this
		{struct{ A any }{}, false},      // anything at all
		{struct{ T [1][]int }{}, false}, // nested
		{struct {
			S string `json:"s,omitempty"`
		}{}, true},
	} {
		if got := newRowCache(tc.row).typ != nil; got != tc.flat {
			t.Errorf("%T: cached %v, want %v", tc.row, got, tc.flat)
		}
	}
	if newRowCache(nil).typ != nil || newRowCache(&flatRow{}).typ != nil {
		t.Error("no row type, or a pointer, must disable the cache")
	}
}

func TestRowCacheCopies(t *testing.T) {
	c := newRowCache(flatRow{})
	in := flatRow{ID: "a", N: 1, Codes: [2]string{"x", "y"}}
	v, ok := c.value(&in) // a pointer is cached as its value
	if !ok {
		t.Fatal("a flat row was not cacheable")
	}
	c.rows["a"] = cachedRow{val: v}
	in.N, in.Codes[0] = 99, "changed" // the caller's copy is its own
	var out flatRow
	if found, ok := c.get("a", &out); !found || !ok || out.N != 1 || out.Codes[0] != "x" {
		t.Fatalf("got %+v (found %v ok %v), want the row as cached", out, found, ok)
	}
	out.N = 7
	var again flatRow
	c.get("a", &again)
	if again.N != 1 {
		t.Fatal("changing a row read from the cache changed the cache")
	}
	// Another type reads through to Pebble.
	var other struct{ ID string }
	if found, _ := c.get("a", &other); found {
		t.Fatal("a row of another type was served from the cache")
	}
	// A string JSON would rewrite (invalid UTF-8) is not cached: the
	// next read must see what a decode from Pebble would give.
	if _, ok := c.value(flatRow{ID: "bad\xff"}); ok {
		t.Fatal("a row with invalid UTF-8 was cached")
	}
	c.rows["gone"] = cachedRow{deleted: true}
	if found, ok := c.get("gone", &out); !found || ok {
		t.Fatalf("a deleted row: found %v ok %v, want found and absent", found, ok)
	}
}
