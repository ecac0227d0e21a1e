package projections_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/internal/codec"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/internal/store"
	"github.com/strata-es/strata/projections"
	"github.com/strata-es/strata/schemas"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// memSink is a Sink in memory that keeps the highest version of each row,
// as a real one must, and checks what the runner hands it.
type memSink struct {
	mu      sync.Mutex
	fail    error // every Open and Write fails with it while set
	rows    map[string]memRow
	offsets map[position.TP]int64
	seen    map[string]string // key@version → row: one state per version
	batches []projections.SinkBatch
	bad     []string // what the runner got wrong
}

type memRow struct {
	ver uint64
	row json.RawMessage // nil: deleted
}

func newMemSink() *memSink {
	return &memSink{rows: map[string]memRow{}, seen: map[string]string{}}
}

func (m *memSink) Name() string { return "mem" }
func (m *memSink) Close() error { return nil }

func (m *memSink) setFail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

func (m *memSink) Open(context.Context, projections.SinkView) (map[position.TP]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	if m.offsets == nil {
		return nil, nil
	}
	o := map[position.TP]int64{}
	for k, v := range m.offsets {
		o[k] = v
	}
	return o, nil
}

func (m *memSink) Write(_ context.Context, b projections.SinkBatch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.batches = append(m.batches, b)
	for i, r := range b.Rows {
		if i > 0 && b.Rows[i-1].Key >= r.Key {
			m.bad = append(m.bad, fmt.Sprintf("rows out of key order: %q after %q", r.Key, b.Rows[i-1].Key))
		}
		id := r.Key + "@" + strconv.FormatUint(r.Version, 10)
		if prev, ok := m.seen[id]; ok && prev != string(r.Row) {
			m.bad = append(m.bad, fmt.Sprintf("version %s came with two rows: %s and %s", id, prev, r.Row))
		}
		m.seen[id] = string(r.Row)
		cur, ok := m.rows[r.Key]
		if !ok || r.Version > cur.ver || b.Backfill && r.Version == cur.ver {
			m.rows[r.Key] = memRow{r.Version, r.Row}
		}
	}
	if b.Offsets != nil && m.offsets == nil {
		m.offsets = map[position.TP]int64{}
	}
	for tp, off := range b.Offsets {
		m.offsets[tp] = max(m.offsets[tp], off)
	}
	return nil
}

// live is the rows the sink has, without deletions, as key → row JSON.
func (m *memSink) live() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for k, r := range m.rows {
		if r.row != nil {
			out[k] = string(r.row)
		}
	}
	return out
}

// balances is a test view of accounts: a row per account with its balance
// and event count; an account whose balance reaches 0 is deleted, so the
// view has deletions.
var balances = projections.Projection{
	Name:       "balances",
	Aggregates: []string{account.Name},
	Apply: func(tx projections.Tx, ev projections.Event) error {
		var row struct {
			Balance int64 `json:"balance"`
			Events  int   `json:"events"`
		}
		if _, err := tx.Get(ev.AggregateID, &row); err != nil {
			return err
		}
		switch e := ev.Data.(type) {
		case account.Opened:
			row.Balance = e.InitialBalance
		case account.Deposited:
			row.Balance += e.Amount
		case account.Withdrawn:
			row.Balance -= e.Amount
		}
		row.Events++
		if row.Balance == 0 {
			return tx.Delete(ev.AggregateID)
		}
		return tx.Put(ev.AggregateID, row)
	},
}

type sinkEnv struct {
	t      *testing.T
	opts   []kgo.Opt
	codecs map[string]codec.Codec
	topic  string
	cl     *kgo.Client
}

const sinkParts = 2

func newSinkEnv(t *testing.T) *sinkEnv {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(sinkParts, "t.account.events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	cat := schemas.Default()
	return &sinkEnv{t: t, opts: opts, cl: cl, topic: "t.account.events",
		codecs: map[string]codec.Codec{account.Name: {Type: account.Type, Catalog: cat}}}
}

// produce writes the events of one account, its versions from first on.
func (e *sinkEnv) produce(id string, first uint64, evs ...aggregates.Event) {
	e.t.Helper()
	var recs []*kgo.Record
	for i, ev := range evs {
		v, err := e.codecs[account.Name].EncodeEvent(ev)
		if err != nil {
			e.t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: e.topic, Key: []byte(id), Value: v,
			Headers: []kgo.RecordHeader{{Key: kafka.HeaderVersion, Value: []byte(strconv.FormatUint(first+uint64(i), 10))}}})
	}
	if err := e.cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// history writes n accounts' events: opened with 10, deposits, and for
// every third account withdrawals down to 0 (a delete) and a reopening.
// It returns how many events each account has.
func (e *sinkEnv) history(n int) map[string]int {
	counts := map[string]int{}
	for i := range n {
		id := fmt.Sprintf("acc-%03d", i)
		evs := []aggregates.Event{account.Opened{Holder: id, InitialBalance: 10, Currency: "EUR"}, account.Deposited{Amount: int64(i)}}
		if i%3 == 0 {
			evs = append(evs, account.Withdrawn{Amount: 10 + int64(i)})
			if i%2 == 0 {
				evs = append(evs, account.Deposited{Amount: 5})
			}
		}
		e.produce(id, 1, evs...)
		counts[id] = len(evs)
	}
	return counts
}

func (e *sinkEnv) runner(db *store.DB, sinks []projections.Sink, observe func(string, time.Duration, error), opts ...kgo.Opt) *projections.Runner {
	return projections.NewRunner(projections.RunnerConfig{Projection: balances, Codecs: e.codecs, DB: db, Names: kafka.Names{Namespace: "t"},
		Partitions: sinkParts, Opts: append(append([]kgo.Opt(nil), e.opts...), opts...), Sinks: sinks, OnSinkWrite: observe})
}

func memDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// start runs r until stop, or until the test ends: the stop is also a
// cleanup, which runs before the cleanups registered earlier (memDB's
// Close) when a test fails before it stops the runner.
func start(t *testing.T, r *projections.Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("runner: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pebbleRows is the view's rows as Pebble has them.
func pebbleRows(t *testing.T, db *store.DB, view string) map[string]string {
	t.Helper()
	out := map[string]string{}
	prefix := append(store.Key('v', view), 0)
	if err := db.Scan(prefix, func(k, v []byte) bool {
		out[string(k[len(prefix):])] = string(v)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func applied(r *projections.Runner) int64 {
	var n int64
	for _, p := range r.Status().Partitions {
		n += p.Applied
	}
	return n
}

func caughtUp(r *projections.Runner) bool {
	st := r.Status()
	return st.State == "running" && st.Lag == 0 && len(st.Partitions) == sinkParts
}

func equalRows(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for k, w := range want {
		if !bytes.Equal([]byte(got[k]), []byte(w)) {
			t.Errorf("%s: row %q = %s, want %s", what, k, got[k], w)
		}
	}
}

// TestSinkWrites: every batch reaches the sink with each row's version
// (the events that wrote it), deletions as nil rows, and the offsets;
// the sink ends equal to Pebble.
func TestSinkWrites(t *testing.T) {
	env := newSinkEnv(t)
	counts := env.history(30)
	db := memDB(t)
	sink := newMemSink()
	r := env.runner(db, []projections.Sink{sink}, nil)
	stop := start(t, r)
	waitFor(t, "the view to catch up", func() bool { return caughtUp(r) })
	stop()

	equalRows(t, "sink", sink.live(), pebbleRows(t, db, "balances"))
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.bad) > 0 {
		t.Errorf("the runner handed the sink: %v", sink.bad)
	}
	deleted := 0
	for id, n := range counts {
		got := sink.rows[id]
		if got.ver != uint64(n) {
			t.Errorf("row %s: version %d, want %d (its events)", id, got.ver, n)
		}
		if got.row == nil {
			deleted++
		}
		if v, err := projections.RowVersion(db, "balances", id); err != nil || v != uint64(n) {
			t.Errorf("row %s: Pebble's version %d (%v), want %d", id, v, err, n)
		}
	}
	if deleted != 5 { // acc-003, 009, 015, 021, 027: odd multiples of 3
		t.Errorf("%d deleted rows in the sink, want 5", deleted)
	}
	var total int64
	for tp, off := range sink.offsets {
		total += off
		if off != r.Applied().Next(tp) {
			t.Errorf("sink offset of %v = %d, the view's is %d", tp, off, r.Applied().Next(tp))
		}
	}
	if total != applied(r) || total == 0 {
		t.Errorf("sink offsets add up to %d, the view applied %d", total, applied(r))
	}
}

// TestSinkDownHoldsTheView: while the sink fails, the view does not move
// (nothing reaches Pebble), the status says the sink is down and why, and
// the failures are reported; once it is back, the view catches up with
// nothing lost.
func TestSinkDownHoldsTheView(t *testing.T) {
	env := newSinkEnv(t)
	env.history(3)
	db := memDB(t)
	sink := newMemSink()
	var mu sync.Mutex
	var failures, successes int
	observe := func(name string, _ time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if name != "mem" {
			t.Errorf("attempt reported for sink %q", name)
		}
		if err != nil {
			failures++
		} else {
			successes++
		}
	}
	r := env.runner(db, []projections.Sink{sink}, observe)
	stop := start(t, r)
	defer stop()
	// All three accounts in Pebble and in the sink, not merely no lag
	// known yet: under load the first fetch can come late.
	waitFor(t, "the view to catch up", func() bool {
		return caughtUp(r) && len(pebbleRows(t, db, "balances")) == 3 && len(sink.live()) == 3
	})
	before := applied(r)

	sink.setFail(errors.New("connection refused"))
	counts := env.history(10) // the first three accounts get more events
	waitFor(t, "the sink to be reported down", func() bool {
		st := r.Status()
		return len(st.Sinks) == 1 && !st.Sinks[0].Up && st.Sinks[0].Errors >= 2
	})
	st := r.Status()
	if s := st.Sinks[0]; s.Name != "mem" || s.Error == "" || !bytes.Contains([]byte(s.Error), []byte("connection refused")) || s.Since.IsZero() {
		t.Errorf("sink status while down: %+v", s)
	}
	time.Sleep(300 * time.Millisecond) // a few retries
	if n := applied(r); n != before {
		t.Errorf("the view moved from %d to %d while its sink was down", before, n)
	}
	if got := pebbleRows(t, db, "balances"); len(got) != 3 {
		t.Errorf("Pebble has %d rows while the sink is down, want the 3 from before", len(got))
	}
	mu.Lock()
	if failures < 2 {
		t.Errorf("%d failed attempts reported", failures)
	}
	mu.Unlock()

	sink.setFail(nil)
	// Every account in the sink too, not merely no lag known: the lag of
	// the records written while the sink was down can come late under load.
	waitFor(t, "the view to catch up after the sink came back", func() bool {
		if !caughtUp(r) || !r.Status().Sinks[0].Up {
			return false
		}
		sink.mu.Lock()
		defer sink.mu.Unlock()
		for id, n := range counts {
			if id >= "acc-003" && sink.rows[id].ver != uint64(n) {
				return false
			}
		}
		return true
	})
	equalRows(t, "sink after recovery", sink.live(), pebbleRows(t, db, "balances"))
	for id, n := range counts {
		if id >= "acc-003" {
			sink.mu.Lock()
			if v := sink.rows[id].ver; v != uint64(n) {
				t.Errorf("row %s: version %d, want %d", id, v, n)
			}
			sink.mu.Unlock()
		}
	}
	if s := r.Status().Sinks[0]; !s.Up || s.Error != "" {
		t.Errorf("sink status after recovery: %+v", s)
	}
}

// TestSinkReplayNeverGoesBack: a view whose Pebble copy is lost (a crash
// before its commits, a wiped data directory) replays every event to the
// sink in other batches than the first time: each row state comes with
// the same version as before, so the sink keeps its rows, and it ends
// equal to the view.
func TestSinkReplayNeverGoesBack(t *testing.T) {
	env := newSinkEnv(t)
	env.history(40)
	sink := newMemSink()
	db := memDB(t)
	r := env.runner(db, []projections.Sink{sink}, nil)
	stop := start(t, r)
	waitFor(t, "the first run", func() bool { return caughtUp(r) })
	stop()
	first := sink.live()

	// Again from nothing, in small fetches: other batch boundaries.
	db2 := memDB(t)
	r2 := env.runner(db2, []projections.Sink{sink}, nil, kgo.FetchMaxBytes(200), kgo.FetchMaxPartitionBytes(200))
	stop = start(t, r2)
	waitFor(t, "the replay", func() bool { return caughtUp(r2) })
	stop()
	sink.mu.Lock()
	bad, batches := sink.bad, len(sink.batches)
	sink.mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("replay: %v", bad)
	}
	if batches < 4 {
		t.Errorf("%d batches in all: the replay did not come in small batches", batches)
	}
	equalRows(t, "sink after the replay", sink.live(), first)
	equalRows(t, "replayed view", pebbleRows(t, db2, "balances"), first)
}

// TestSinkBackfill: a sink added to a view that already has its rows (or
// whose store was wiped) gets every row with its version and the deleted
// ones, then the view's offsets, before any new batch.
func TestSinkBackfill(t *testing.T) {
	env := newSinkEnv(t)
	counts := env.history(1200) // more than two backfill chunks
	db := memDB(t)
	r := env.runner(db, nil, nil)
	stop := start(t, r)
	waitFor(t, "the view without sinks", func() bool { return caughtUp(r) })
	stop()

	sink := newMemSink()
	r = env.runner(db, []projections.Sink{sink}, nil)
	stop = start(t, r)
	waitFor(t, "the backfill", func() bool { return caughtUp(r) && r.Status().Sinks[0].Up })
	equalRows(t, "backfilled sink", sink.live(), pebbleRows(t, db, "balances"))
	sink.mu.Lock()
	if len(sink.batches) < 4 {
		t.Errorf("%d backfill batches, want chunks", len(sink.batches))
	}
	for i, b := range sink.batches {
		last := i == len(sink.batches)-1
		if !b.Backfill || last != (b.Offsets != nil) || last != (len(b.Rows) == 0) {
			t.Errorf("backfill batch %d of %d: backfill %v, %d rows, offsets %v; want rows without offsets, then offsets alone", i, len(sink.batches), b.Backfill, len(b.Rows), b.Offsets)
		}
	}
	for id, n := range counts {
		if v := sink.rows[id].ver; v != uint64(n) {
			t.Errorf("row %s: backfilled version %d, want %d", id, v, n)
			break
		}
	}
	nb := len(sink.batches)
	sink.mu.Unlock()

	// New events go on as batches; a restart backfills nothing again.
	env.produce("acc-001", 3, account.Deposited{Amount: 1})
	waitFor(t, "the new event", func() bool {
		return caughtUp(r) && applied(r) > 0 && len(sink.live()) > 0 && sinkVer(sink, "acc-001") == 3
	})
	stop()
	r = env.runner(db, []projections.Sink{sink}, nil)
	stop = start(t, r)
	waitFor(t, "the restart", func() bool { return caughtUp(r) && r.Status().Sinks[0].Up })
	stop()
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, b := range sink.batches[nb:] {
		if b.Backfill {
			t.Errorf("a sink that has every row was backfilled again")
			break
		}
	}
}

func sinkVer(m *memSink, key string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rows[key].ver
}

// TestSinkRebuild: a rebuild does not write the sinks while it runs; after
// the swap the new generation backfills them, replacing rows of an equal
// version (a rebuild is usually for a changed projection, whose rows may
// differ at the same version), so the sink ends equal to the new view.
func TestSinkRebuild(t *testing.T) {
	env := newSinkEnv(t)
	env.history(300)
	db := memDB(t)
	sink := newMemSink()
	live, err := projections.NewLive(projections.RunnerConfig{Projection: balances, Codecs: env.codecs, DB: db, Names: kafka.Names{Namespace: "t"},
		Partitions: sinkParts, Opts: env.opts, Sinks: []projections.Sink{sink}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- live.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("live: %v", err)
		}
	}()
	waitFor(t, "the first generation", func() bool { return caughtUp(live.Current()) && len(sink.live()) > 0 })
	gen := live.Status().Generation

	// What a changed projection would give: the sink's copy of a row
	// differs from the view at the same version.
	sink.mu.Lock()
	stale := sink.rows["acc-001"]
	sink.rows["acc-001"] = memRow{stale.ver, json.RawMessage(`{"stale":true}`)}
	sink.seen = map[string]string{} // the rebuild's backfill sends acc-001 at that version again
	nb := len(sink.batches)
	sink.mu.Unlock()

	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	if err := live.Rebuild(ctx, rctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the swap and the backfill", func() bool {
		st := live.Status()
		return st.Generation != gen && (st.Rebuild == nil || st.Rebuild.Done) && caughtUp(live.Current()) && len(st.Sinks) == 1 && st.Sinks[0].Up && !st.Sinks[0].Backfilling
	})
	equalRows(t, "the sink after the rebuild", sink.live(), pebbleRows(t, db, projections.Storage("balances", live.Status().Generation)))
	sink.mu.Lock()
	defer sink.mu.Unlock()
	var backfilled int
	for _, b := range sink.batches[nb:] {
		if !b.Backfill {
			t.Errorf("a batch of %d rows reached the sink during the rebuild; only the new generation's backfill should", len(b.Rows))
		}
		backfilled += len(b.Rows)
	}
	if backfilled < 300 {
		t.Errorf("the backfill after the swap sent %d rows, want every row (300)", backfilled)
	}
	if len(sink.bad) > 0 {
		t.Errorf("the runner: %v", sink.bad)
	}
}
