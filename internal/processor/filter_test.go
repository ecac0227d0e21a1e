package processor

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/store"
)

// built waits until s has a filter.
func built(t *testing.T, s *keyFilter) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		built := s.f != nil
		s.mu.Unlock()
		if built {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the filter was not built in 10 s")
		}
	}
}

func TestKeyFilter(t *testing.T) {
	db, err := store.Open(t.TempDir(), store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := db.NewBatch()
	for i := range 1000 {
		if err := store.PutResult(b, "account", fmt.Sprintf("stored-%d", i), 1, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	// Another aggregate type's results are not this filter's.
	if err := store.PutResult(b, "order", "order-result", 1, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Processor{agg: "account", cfg: Config{DB: db, Log: slog.New(slog.DiscardHandler)}}
	s := p.newKeyFilter(ctx, "results", store.ResultKey("account", ""))
	defer s.wait()
	defer cancel()
	built(t, s)
	for i := range 1000 {
		if id := fmt.Sprintf("stored-%d", i); !s.mayHave(id) {
			t.Fatalf("%s has a stored result, and the filter says it has none", id)
		}
	}
	fresh := 0
	for i := range 10000 {
		if !s.mayHave(fmt.Sprintf("new-%d", i)) {
			fresh++
		}
	}
	if fresh < 9800 { // a 1% false-positive rate, with room
		t.Fatalf("only %d of 10000 new IDs answered without Pebble", fresh)
	}

	// Committed IDs are in; past its capacity it is rebuilt from Pebble,
	// and IDs committed during the rebuild are not lost.
	s.committed([]string{"late"})
	if !s.mayHave("late") {
		t.Fatal("a committed ID is not in the filter")
	}
	s.mu.Lock()
	s.capacity = s.added // the next commit overflows it
	s.mu.Unlock()
	s.committed([]string{"overflow"})
	s.committed([]string{"during-rebuild"}) // pending, or in the new filter
	built(t, s)
	if !s.mayHave("during-rebuild") {
		t.Fatal("an ID committed during a rebuild was lost")
	}
	if !s.mayHave("stored-7") {
		t.Fatal("the rebuild lost a stored result")
	}
	// "late" and "overflow" were never written to this Pebble: the
	// rebuild dropping them is right (they stand for expired results).

	var none *keyFilter
	if !none.mayHave("x") {
		t.Fatal("no filter must mean: check Pebble")
	}
}
