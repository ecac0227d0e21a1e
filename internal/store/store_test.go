package store

import (
	"bytes"
	"errors"
	"testing"
)

func openMem(t *testing.T) *DB {
	t.Helper()
	db, err := Open("", Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestRecordsRoundTrip(t *testing.T) {
	db := openMem(t)
	b := db.NewBatch()
	a := Aggregate{Version: 3, Partition: 2, Offset: 99, Timestamp: 1700000000000, State: []byte{0xC3, 1, 2}}
	if err := PutAggregate(b, "account", "acc-1", &a); err != nil {
		t.Fatal(err)
	}
	for v := uint64(1); v <= 3; v++ {
		e := Event{Version: v, Partition: 2, Offset: int64(90 + v), Timestamp: 17, Type: "T", CommandID: "c", Payload: []byte{byte(v)}}
		if err := PutEvent(b, "account", "acc-1", &e); err != nil {
			t.Fatal(err)
		}
	}
	// An ID that is a prefix of another must not see its events.
	if err := PutEvent(b, "account", "acc-10", &Event{Version: 1}); err != nil {
		t.Fatal(err)
	}
	if err := PutCheckpoint(b, "account", 2, 100); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	got, ok, err := LoadAggregate(db.Pebble(), "account", "acc-1")
	if err != nil || !ok || got.Version != 3 || got.Offset != 99 || string(got.State) != string(a.State) {
		t.Fatalf("LoadAggregate = %+v %v %v", got, ok, err)
	}
	if _, ok, _ := LoadAggregate(db.Pebble(), "account", "acc-2"); ok {
		t.Fatal("found an aggregate never written")
	}
	var versions []uint64
	if err := db.Events("account", "acc-1", 2, func(e *Event) bool { versions = append(versions, e.Version); return true }); err != nil {
		t.Fatal(err)
	}
	if len(versions) != 2 || versions[0] != 2 || versions[1] != 3 {
		t.Fatalf("events from 2 = %v", versions)
	}
	if off, err := LoadCheckpoint(db.Pebble(), "account", 2); err != nil || off != 100 {
		t.Fatalf("checkpoint = %d %v", off, err)
	}
	if off, err := LoadCheckpoint(db.Pebble(), "account", 3); err != nil || off != 0 {
		t.Fatalf("missing checkpoint = %d %v", off, err)
	}
}

func TestCorruptRecordIsAnError(t *testing.T) {
	db := openMem(t)
	b := db.NewBatch()
	if err := b.Set(AggregateKey("account", "x"), []byte{recordFormat, 0xff}, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadAggregate(db.Pebble(), "account", "x"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
}

func FuzzEventDecode(f *testing.F) {
	f.Add((&Event{Version: 1, Type: "T", Payload: []byte{1}}).encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		var e Event
		if err := e.decode(data); err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		var again Event
		if err := again.decode(e.encode()); err != nil || again.Version != e.Version || again.Partition != e.Partition ||
			again.Offset != e.Offset || again.Timestamp != e.Timestamp || again.Type != e.Type || again.CommandID != e.CommandID ||
			!bytes.Equal(again.Payload, e.Payload) {
			t.Fatalf("%+v re-decodes as %+v, %v", e, again, err)
		}
	})
}

func BenchmarkBatchWrite(b *testing.B) {
	db, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	state := make([]byte, 200)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		batch := db.NewBatch()
		for range 100 {
			i++
			a := Aggregate{Version: uint64(i), State: state}
			if err := PutAggregate(batch, "account", string(rune('a'+i%26))+"-"+string(rune(i)), &a); err != nil {
				b.Fatal(err)
			}
		}
		if err := db.Commit(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "keys/s")
}

func TestLatestSnapshot(t *testing.T) {
	db := openMem(t)
	b := db.NewBatch()
	for _, v := range []uint64{100, 200, 300} {
		if err := PutSnapshot(b, "account", "a", v, []byte{byte(v / 100)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := PutSnapshot(b, "account", "a2", 50, []byte{9}); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		atMost, want uint64
		ok           bool
	}{{99, 0, false}, {100, 100, true}, {250, 200, true}, {300, 300, true}, {1 << 40, 300, true}} {
		v, st, ok, err := db.LatestSnapshot("account", "a", tc.atMost)
		if err != nil || ok != tc.ok || v != tc.want || ok && st[0] != byte(tc.want/100) {
			t.Errorf("LatestSnapshot(%d) = %d %v %v %v, want %d %v", tc.atMost, v, st, ok, err, tc.want, tc.ok)
		}
	}
}

func TestExpireResults(t *testing.T) {
	db := openMem(t)
	b := db.NewBatch()
	for i, ts := range []int64{1000, 2000, 3000} {
		if err := PutResult(b, "account", "cmd-"+string(rune('a'+i)), ts, []byte("r")); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	n, err := db.ExpireResults("account", 2500, 100)
	if err != nil || n != 2 {
		t.Fatalf("expired %d, %v; want 2", n, err)
	}
	for id, want := range map[string]bool{"cmd-a": false, "cmd-b": false, "cmd-c": true} {
		if _, ok, _ := LoadResult(db.Pebble(), "account", id); ok != want {
			t.Errorf("%s present = %v, want %v", id, ok, want)
		}
	}
	if n, _ := db.ExpireResults("account", 2500, 100); n != 0 {
		t.Fatalf("second expiry deleted %d", n)
	}
}
