package projections

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestParkedEvents: the parked events of a view, page by page, in
// aggregate and offset order, each with its aggregate's reason; another
// view's parked events never show.
func TestParkedEvents(t *testing.T) {
	db, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	since := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	b := db.NewBatch()
	owner := func(view, agg, id, reason string) {
		v, _ := json.Marshal(parkedOwner{Reason: reason, Since: since})
		if err := b.Set(parkedOwnerKey(view, agg, id), v, nil); err != nil {
			t.Fatal(err)
		}
	}
	rec := func(view, id string, offset int64) {
		r := &kgo.Record{Topic: "ns.account.events", Partition: 2, Offset: offset, Key: []byte(id), Value: []byte{0xC3, 0x01, byte(offset)},
			Headers: []kgo.RecordHeader{{Key: "strata-aggregate-version", Value: []byte(fmt.Sprint(offset))}}}
		if err := park(b, view, "account", r); err != nil {
			t.Fatal(err)
		}
	}
	owner("buggy", "account", "acc-b", "unlucky 13")
	owner("buggy", "account", "acc-a", "bad data")
	owner("other", "account", "acc-c", "elsewhere")
	// Offsets past 255 put 0x00 bytes in the key's binary tail.
	for _, off := range []int64{256, 7, 300} {
		rec("buggy", "acc-b", off)
	}
	rec("buggy", "acc-a", 1000)
	rec("other", "acc-c", 1)
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}

	var got []string
	cursor, pages := "", 0
	for {
		evs, next, err := ParkedEvents(db, "buggy", cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, e := range evs {
			got = append(got, fmt.Sprintf("%s/%s@%d:%s", e.Aggregate, e.ID, e.Offset, e.Reason))
			if e.Topic != "ns.account.events" || e.Partition != 2 || len(e.Value) != 3 || string(e.Headers["strata-aggregate-version"]) != fmt.Sprint(e.Offset) || !e.Since.Equal(since) {
				t.Errorf("event %+v: the record or its owner did not come back whole", e)
			}
		}
		if next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("the cursor does not advance")
		}
		cursor = next
	}
	want := "account/acc-a@1000:bad data account/acc-b@7:unlucky 13 account/acc-b@256:unlucky 13 account/acc-b@300:unlucky 13"
	if strings.Join(got, " ") != want || pages != 2 {
		t.Errorf("parked events in %d pages:\n%s\nwant, in 2 pages:\n%s", pages, strings.Join(got, " "), want)
	}
	if _, _, err := ParkedEvents(db, "buggy", "!!", 2); !errors.Is(err, ErrBadCursor) {
		t.Errorf("bad cursor: %v, want ErrBadCursor", err)
	}
	if evs, next, err := ParkedEvents(db, "none", "", 10); err != nil || len(evs) != 0 || next != "" {
		t.Errorf("a view with nothing parked: %v %q %v", evs, next, err)
	}
}
