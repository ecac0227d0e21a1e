package store

import (
	"slices"
	"testing"
)

// TestAggregateIDs: a prefix scan over one type's aggregates, resumable
// after any ID, that never strays into another type or into IDs that only
// share a shorter prefix.
func TestAggregateIDs(t *testing.T) {
	db := openMem(t)
	b := db.NewBatch()
	for i, id := range []string{"acc-1", "acc-10", "acc-2", "acc", "bob", "ac"} {
		if err := PutAggregate(b, "account", id, &Aggregate{Version: uint64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	// Another type, whose name the account type's keys must not reach.
	if err := PutAggregate(b, "accountx", "acc-9", &Aggregate{Version: 1}); err != nil {
		t.Fatal(err)
	}
	if err := PutAggregate(b, "order", "acc-1", &Aggregate{Version: 1}); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	list := func(prefix, after string, limit int) []string {
		var out []string
		err := db.AggregateIDs("account", prefix, after, func(id string, a *Aggregate) bool {
			if a.Version == 0 {
				t.Errorf("%s decoded without its version", id)
			}
			out = append(out, id)
			return len(out) < limit
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, tc := range []struct {
		prefix, after string
		limit         int
		want          []string
	}{
		{"", "", 100, []string{"ac", "acc", "acc-1", "acc-10", "acc-2", "bob"}},
		{"acc-", "", 100, []string{"acc-1", "acc-10", "acc-2"}},
		{"acc-1", "", 100, []string{"acc-1", "acc-10"}},
		{"acc-", "", 2, []string{"acc-1", "acc-10"}},
		{"acc-", "acc-10", 2, []string{"acc-2"}},
		{"acc-", "acc-1", 100, []string{"acc-10", "acc-2"}},
		// A cursor before the prefix starts at the prefix.
		{"acc-", "a", 100, []string{"acc-1", "acc-10", "acc-2"}},
		{"acc-", "acc-2", 100, nil},
		{"zzz", "", 100, nil},
		{"", "acc-2", 100, []string{"bob"}},
	} {
		if got := list(tc.prefix, tc.after, tc.limit); !slices.Equal(got, tc.want) {
			t.Errorf("prefix %q after %q limit %d: %q, want %q", tc.prefix, tc.after, tc.limit, got, tc.want)
		}
	}
}
