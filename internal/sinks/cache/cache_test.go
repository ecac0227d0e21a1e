package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/internal/sinks/sinktest"
	"github.com/strata-es/strata/projections"
)

// openSink opens a view's cache under a prefix of the test's own on the
// Redis at addr (a redis:// URL), removing its keys when the test ends.
func openSink(t *testing.T, rawURL string, ttl time.Duration) (*Sink, projections.SinkView) {
	t.Helper()
	rdb, err := NewClient(Config{URL: rawURL, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("test%d", time.Now().UnixNano())
	v := projections.SinkView{Name: "orders", Namespace: ns}
	s := New(rdb, v, ns+":order", ttl)
	if off, err := s.Open(context.Background(), v); err != nil || off != nil {
		t.Fatalf("Open = %v, %v; want no offsets", off, err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, ns+":*").Result()
		keys = append(keys, s.offsets)
		rdb.Del(ctx, keys...)
		_ = s.Close()
	})
	return s, v
}

func row(status string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"id":"o1","status":%q}`, status))
}

func get(t *testing.T, s *Sink, key string) (Entry, bool) {
	t.Helper()
	e, hit, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return e, hit
}

func write(t *testing.T, s *Sink, b projections.SinkBatch) {
	t.Helper()
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func TestVersionGuardTTLAndOffsets(t *testing.T) {
	u := sinktest.Server(t, "STRATA_TEST_REDIS")
	s, v := openSink(t, u, 10*time.Minute)
	ctx := context.Background()
	tp := position.TP{Topic: "strata.order.events", Partition: 2}
	write(t, s, projections.SinkBatch{Rows: []projections.SinkRow{{Key: "o1", Version: 2, Row: row("confirmed")}}, Offsets: map[position.TP]int64{tp: 7}})
	// Replays of an older and the same version change nothing.
	write(t, s, projections.SinkBatch{Rows: []projections.SinkRow{{Key: "o1", Version: 1, Row: row("pending")}}})
	write(t, s, projections.SinkBatch{Rows: []projections.SinkRow{{Key: "o1", Version: 2, Row: row("REPLAYED")}}})
	if e, hit := get(t, s, "o1"); !hit || e.Version != 2 || string(e.Row) != string(row("confirmed")) {
		t.Fatalf("o1 = %s v%d hit=%v, want confirmed v2", e.Row, e.Version, hit)
	}
	// The seed's key, and its TTL.
	ttl, err := s.rdb.PTTL(ctx, s.prefix+":o1").Result()
	if err != nil || ttl <= 9*time.Minute || ttl > 10*time.Minute {
		t.Fatalf("TTL of %s:o1 = %s, %v; want about 10m", s.prefix, ttl, err)
	}
	if got, _ := s.rdb.HGet(ctx, s.prefix+":o1", "row").Result(); got != string(row("confirmed")) {
		t.Fatalf("HGET %s:o1 row = %s", s.prefix, got)
	}
	write(t, s, projections.SinkBatch{Rows: []projections.SinkRow{{Key: "o1", Version: 3, Row: row("shipped")}}})
	if e, _ := get(t, s, "o1"); e.Version != 3 || !strings.Contains(string(e.Row), "shipped") {
		t.Fatalf("o1 = %s v%d, want shipped v3", e.Row, e.Version)
	}
	off, err := New(s.rdb, v, s.prefix, 0).Open(ctx, v)
	if err != nil || off[tp] != 7 || len(off) != 1 {
		t.Fatalf("Open after a write = %v, %v", off, err)
	}
	if e, hit := get(t, s, "absent"); hit || e.Row != nil {
		t.Fatalf("absent = %+v hit=%v", e, hit)
	}
}

func TestFillRefusedAfterANewerWrite(t *testing.T) {
	s, _ := openSink(t, sinktest.Server(t, "STRATA_TEST_REDIS"), 0)
	ctx := context.Background()
	// A reader read version 1 elsewhere; meanwhile the projection wrote
	// version 2. The fill must not put version 1 back.
	write(t, s, projections.SinkBatch{Rows: []projections.SinkRow{{Key: "o1", Version: 2, Row: row("confirmed")}}})
	if ok, err := s.Fill(ctx, "o1", 1, row("pending")); err != nil || ok {
		t.Fatalf("Fill of an older version = %v, %v; want refused", ok, err)
	}
	if e, _ := get(t, s, "o1"); e.Version != 2 {
		t.Fatalf("o1 v%d after a refused fill", e.Version)
	}
	// A fill of a miss is stored with the default TTL, and a later write
	// of the projection replaces it.
	if ok, err := s.Fill(ctx, "o2", 4, row("pending")); err != nil || !ok {
		t.Fatalf("Fill of a miss = %v, %v", ok, err)
	}
	if ttl := s.rdb.PTTL(ctx, s.Key("o2")).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("TTL of a fill = %s, want the default hour", ttl)
	}
	write(t, s, projections.SinkBatch{Rows: []projections.SinkRow{{Key: "o2", Version: 5, Row: row("shipped")}}})
	if e, _ := get(t, s, "o2"); e.Version != 5 || !strings.Contains(string(e.Row), "shipped") {
		t.Fatalf("o2 = %s v%d, want shipped v5", e.Row, e.Version)
	}
}

func TestTombstone(t *testing.T) {
	s, _ := openSink(t, sinktest.Server(t, "STRATA_TEST_REDIS"), 0)
	ctx := context.Background()
	write(t, s, projections.SinkBatch{Rows: []projections.SinkRow{{Key: "o1", Version: 1, Row: row("pending")}}})
	write(t, s, projections.SinkBatch{Rows: []projections.SinkRow{{Key: "o1", Version: 2}, {Key: "gone", Version: 3}}})
	for _, k := range []string{"o1", "gone"} {
		if e, hit := get(t, s, k); !hit || e.Row != nil {
			t.Fatalf("%s after its delete = %s hit=%v, want a tombstone", k, e.Row, hit)
		}
	}
	// A fill that read the row before the delete, and a replay of it,
	// cannot resurrect it.
	if ok, _ := s.Fill(ctx, "o1", 1, row("pending")); ok {
		t.Fatal("a fill resurrected a deleted row")
	}
	write(t, s, projections.SinkBatch{Rows: []projections.SinkRow{{Key: "o1", Version: 1, Row: row("pending")}}})
	if e, _ := get(t, s, "o1"); e.Row != nil || e.Version != 2 {
		t.Fatalf("o1 = %s v%d after a replay, want the tombstone v2", e.Row, e.Version)
	}
	if ttl := s.rdb.PTTL(ctx, s.Key("gone")).Val(); ttl <= 0 {
		t.Fatalf("a tombstone has TTL %s, want one", ttl)
	}
	// A row created again after its delete counts on.
	write(t, s, projections.SinkBatch{Rows: []projections.SinkRow{{Key: "o1", Version: 3, Row: row("again")}}})
	if e, _ := get(t, s, "o1"); !strings.Contains(string(e.Row), "again") {
		t.Fatalf("o1 = %s, want it again", e.Row)
	}
}

func TestBackfillRefreshesOnlyWhatIsCached(t *testing.T) {
	s, _ := openSink(t, sinktest.Server(t, "STRATA_TEST_REDIS"), 0)
	write(t, s, projections.SinkBatch{Rows: []projections.SinkRow{{Key: "stale", Version: 1, Row: row("pending")}}})
	write(t, s, projections.SinkBatch{Backfill: true, Rows: []projections.SinkRow{
		{Key: "stale", Version: 4, Row: row("shipped")},
		{Key: "cold", Version: 2, Row: row("pending")},
	}})
	if e, _ := get(t, s, "stale"); e.Version != 4 {
		t.Fatalf("stale v%d after a backfill, want 4", e.Version)
	}
	if _, hit := get(t, s, "cold"); hit {
		t.Fatal("a backfill loaded a row the cache did not hold")
	}
}

func TestScriptLostOnRestart(t *testing.T) {
	s, _ := openSink(t, sinktest.Server(t, "STRATA_TEST_REDIS"), 0)
	ctx := context.Background()
	if err := s.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	write(t, s, projections.SinkBatch{Rows: []projections.SinkRow{{Key: "o1", Version: 1, Row: row("pending")}}})
	if _, hit := get(t, s, "o1"); !hit {
		t.Fatal("no entry after a write with the script flushed")
	}
}

func TestServerDownFailsFastThenRecovers(t *testing.T) {
	raw := sinktest.Server(t, "STRATA_TEST_REDIS")
	pu, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p := sinktest.StartProxy(t, pu.Host)
	pu.Host = p.Addr
	s, _ := openSink(t, pu.String(), 0)
	b := func(v uint64) projections.SinkBatch {
		return projections.SinkBatch{Rows: []projections.SinkRow{{Key: "o1", Version: v, Row: row(fmt.Sprint(v))}}}
	}
	write(t, s, b(1))
	p.Stop()
	start := time.Now()
	if err := s.Write(context.Background(), b(2)); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("Write with Redis down = %v after %s, want an error within the timeout", err, time.Since(start))
	}
	if _, _, err := s.Get(context.Background(), "o1"); err == nil {
		t.Fatal("Get with Redis down: no error")
	}
	p.Start(t)
	write(t, s, b(2))
	if e, _ := get(t, s, "o1"); e.Version != 2 {
		t.Fatalf("o1 v%d once Redis is back, want 2", e.Version)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{URL: "http://x"},
		{URL: "redis://user:sekrit@[::1"},
		{URL: "redis://127.0.0.1:6379/0", CAFile: "/etc/hosts"},
	} {
		_, err := NewClient(c)
		if err == nil {
			t.Errorf("NewClient(%q) = nil error", c.URL)
		} else if strings.Contains(err.Error(), "sekrit") {
			t.Errorf("NewClient error shows the password: %v", err)
		}
	}
	rdb, err := NewClient(Config{URL: "rediss://127.0.0.1:1/0", CAFile: "/etc/hosts"})
	if err == nil || !strings.Contains(err.Error(), "no PEM") {
		t.Errorf("a CA file without PEM = %v, %v", rdb, err)
	}
}
