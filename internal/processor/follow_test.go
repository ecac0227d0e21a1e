package processor

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/internal/codec"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/store"
	"github.com/strata-es/strata/schemas"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// followRig is a processor of accounts over an in-memory Pebble and kfake,
// whose events topic the test writes by hand.
type followRig struct {
	t  *testing.T
	p  *Processor
	cl *kgo.Client
}

func newFollowRig(t *testing.T) *followRig {
	t.Helper()
	names := kafka.Names{Namespace: "t"}
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, names.Events(account.Name), names.Snapshots(account.Name)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	db, err := store.Open(t.TempDir(), store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	opts := []kgo.Opt{kgo.SeedBrokers(kc.ListenAddrs()...)}
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	p := New(Config{
		Codec: codec.Codec{Type: account.Type, Catalog: schemas.Default()},
		DB:    db, Names: names, Partitions: 2, InstanceID: "test", Opts: opts,
	})
	return &followRig{t: t, p: p, cl: cl}
}

// record is ev as version v of account id on partition part of the
// events topic.
func (r *followRig) record(part int32, id string, v uint64, ev aggregates.Event) *kgo.Record {
	r.t.Helper()
	payload, err := r.p.cfg.Codec.EncodeEvent(ev)
	if err != nil {
		r.t.Fatal(err)
	}
	return &kgo.Record{Topic: r.p.events, Partition: part, Key: []byte(id), Value: payload, Headers: []kgo.RecordHeader{
		{Key: kafka.HeaderEventType, Value: []byte(ev.EventType())},
		{Key: kafka.HeaderVersion, Value: []byte(strconv.FormatUint(v, 10))},
		{Key: kafka.HeaderCommandID, Value: []byte(id + "-" + strconv.FormatUint(v, 10))},
	}}
}

// event writes ev as version v of account id to partition part and returns
// its offset.
func (r *followRig) event(part int32, id string, v uint64, ev aggregates.Event) int64 {
	r.t.Helper()
	rec := r.record(part, id, v, ev)
	if err := r.cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		r.t.Fatal(err)
	}
	return rec.Offset
}

func (r *followRig) stored(id string) (store.Aggregate, bool) {
	r.t.Helper()
	a, ok, err := store.LoadAggregate(r.p.cfg.DB.Pebble(), account.Name, id)
	if err != nil {
		r.t.Fatal(err)
	}
	return a, ok
}

// waitStored waits until Pebble holds id at version v, and returns its state.
func (r *followRig) waitStored(id string, v uint64) account.State {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, ok := r.stored(id)
		if ok && a.Version == v {
			st, err := r.p.cfg.Codec.DecodeState(a.State)
			if err != nil {
				r.t.Fatal(err)
			}
			return st.(account.State)
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: stored at version %d (found %v), want %d; follower failures: %v", id, a.Version, ok, v, r.p.Status().Failed)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noneStopped fails the test if the processor stopped a partition.
func (r *followRig) noneStopped() {
	r.t.Helper()
	if st := r.p.Status(); len(st.Failed) > 0 {
		r.t.Errorf("partitions stopped: %v", st.Failed)
	}
}

// follow runs the follower until the test ends.
func (r *followRig) follow(f *follower) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.run(ctx) }()
	r.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			r.t.Errorf("follower: %v", err)
		}
		f.cl.Close()
	})
}

func (r *followRig) newFollower() *follower {
	r.t.Helper()
	f, err := r.p.newFollower(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return f
}

// TestFollowerReadsAgainWhatItSkippedWhileOwned: a batch fetched while a
// partition was not owned, applied after it was assigned, skips the
// partition's records (the new owner catches them up). If the partition is
// taken away again before the follower pauses it, the follower must read
// them again, not go on after them: it used to, and then stopped the
// partition at the next event of the same aggregate ("the events topic has
// a gap"), leaving the node serving stale state.
func TestFollowerReadsAgainWhatItSkippedWhileOwned(t *testing.T) {
	r := newFollowRig(t)
	r.event(0, "acc-1", 1, account.Opened{Holder: "Ada", InitialBalance: 10, Currency: "EUR"})
	r.event(0, "acc-1", 2, account.Deposited{Amount: 5})
	f := r.newFollower()
	if err := f.refollow(); err != nil {
		t.Fatal(err)
	}
	var fetches kgo.Fetches
	for n := 0; n < 2; {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		fs := f.cl.PollFetches(ctx)
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			t.Fatalf("fetched %d of the 2 events", n)
		}
		n += fs.NumRecords()
		fetches = append(fetches, fs...)
	}
	// Assigned between the fetch and the batch...
	r.p.mu.Lock()
	r.p.owned[0] = true
	r.p.mu.Unlock()
	if err := f.batch(fetches); err != nil {
		t.Fatal(err)
	}
	if a, ok := r.stored("acc-1"); ok {
		t.Fatalf("the follower applied version %d of a partition owned by the processor", a.Version)
	}
	// ...and taken away before the follower's next look.
	r.p.mu.Lock()
	delete(r.p.owned, 0)
	r.p.mu.Unlock()
	r.event(0, "acc-1", 3, account.Withdrawn{Amount: 3})
	r.follow(f)
	if st := r.waitStored("acc-1", 3); st.Balance != 12 {
		t.Errorf("acc-1 balance %d, want 12", st.Balance)
	}
	r.noneStopped()
}

// TestFollowerHealsAGapByReadingAgain: when an aggregate's stored version
// is behind the events already read past (a stale write), the follower
// reads the partition again from that aggregate's last applied event
// instead of stopping the partition.
func TestFollowerHealsAGapByReadingAgain(t *testing.T) {
	r := newFollowRig(t)
	r.event(0, "acc-1", 1, account.Opened{Holder: "Ada", InitialBalance: 10, Currency: "EUR"})
	r.event(0, "acc-1", 2, account.Deposited{Amount: 5})
	r.event(0, "acc-1", 3, account.Deposited{Amount: 7})
	f := r.newFollower()
	r.follow(f)
	r.waitStored("acc-1", 3)
	// Move acc-1 back to version 1 behind the follower's back, as a late
	// write of an old owner used to.
	r.p.stateMu.Lock()
	w := r.p.newWork()
	a, err := w.load("acc-1")
	if err != nil {
		t.Fatal(err)
	}
	st := account.State{Open: true, Owner: "Ada", Balance: 10, Currency: "EUR"}
	a.version, a.offset, a.state, a.dirty = 1, 0, st, true
	if err := w.commit(); err != nil {
		t.Fatal(err)
	}
	r.p.cache.reset()
	r.p.stateMu.Unlock()
	r.event(0, "acc-1", 4, account.Withdrawn{Amount: 1})
	if st := r.waitStored("acc-1", 4); st.Balance != 21 {
		t.Errorf("acc-1 balance %d, want 21", st.Balance)
	}
	r.noneStopped()
}

// TestFollowerStopsAtARealGap: events missing from the topic itself stop
// the partition (reported in Status) after one more read; the other
// partitions go on.
func TestFollowerStopsAtARealGap(t *testing.T) {
	r := newFollowRig(t)
	r.event(0, "acc-1", 1, account.Opened{Holder: "Ada", InitialBalance: 10, Currency: "EUR"})
	r.event(0, "acc-1", 3, account.Deposited{Amount: 5})
	f := r.newFollower()
	r.follow(f)
	r.event(1, "acc-2", 1, account.Opened{Holder: "Bo", InitialBalance: 1, Currency: "EUR"})
	r.waitStored("acc-2", 1)
	deadline := time.Now().Add(10 * time.Second)
	for len(r.p.Status().Failed) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the partition with a gap was not reported")
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := r.p.Status()
	if _, ok := st.Failed[0]; len(st.Failed) != 1 || !ok {
		t.Fatalf("failed partitions %+v, want partition 0 only", st.Failed)
	}
	if a, _ := r.stored("acc-1"); a.Version != 1 {
		t.Errorf("acc-1 at version %d, want 1", a.Version)
	}
	r.event(1, "acc-2", 2, account.Deposited{Amount: 1})
	r.waitStored("acc-2", 2)
}

// TestCommitNeverMovesAnAggregateBack: a transaction's state, written to
// Pebble after its partition was taken away, must not replace what the
// follower applied meanwhile.
func TestCommitNeverMovesAnAggregateBack(t *testing.T) {
	r := newFollowRig(t)
	db := r.p.cfg.DB
	newer := store.Aggregate{Version: 5, Partition: 0, Offset: 40, State: mustState(t, r.p, account.State{Open: true, Balance: 50})}
	b := db.NewBatch()
	if err := store.PutAggregate(b, account.Name, "acc-1", &newer); err != nil {
		t.Fatal(err)
	}
	if err := store.PutCheckpoint(b, account.Name, 0, 41); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	w := r.p.newWork() // the transaction begins
	a := &aggState{id: "acc-1", version: 3, offset: 20, state: account.State{Open: true, Balance: 30}, dirty: true}
	w.aggs["acc-1"] = a
	w.checkpoints[0] = 21
	r.p.mu.Lock()
	r.p.revokeLocked([]int32{0}) // the partition is taken away meanwhile
	r.p.mu.Unlock()
	r.p.stateMu.Lock()
	err := w.commit()
	r.p.stateMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := r.stored("acc-1"); got.Version != 5 {
		t.Errorf("acc-1 stored at version %d after a late commit of version 3, want 5", got.Version)
	}
	if cp, err := store.LoadCheckpoint(db.Pebble(), account.Name, 0); err != nil || cp != 41 {
		t.Errorf("checkpoint %d (%v), want 41", cp, err)
	}
}

// TestRestoreNeverMovesAnAggregateBack: a snapshot older than the state
// stored does not replace it.
func TestRestoreNeverMovesAnAggregateBack(t *testing.T) {
	r := newFollowRig(t)
	db := r.p.cfg.DB
	newer := store.Aggregate{Version: 150, Partition: 0, Offset: 200, State: mustState(t, r.p, account.State{Open: true, Balance: 150})}
	b := db.NewBatch()
	if err := store.PutAggregate(b, account.Name, "acc-1", &newer); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		id      string
		version uint64
	}{{"acc-1", 100}, {"acc-2", 100}} {
		rec := &kgo.Record{Topic: r.p.snapshots, Partition: 0, Key: []byte(s.id), Value: mustState(t, r.p, account.State{Open: true, Balance: 100}),
			Headers: []kgo.RecordHeader{
				{Key: kafka.HeaderVersion, Value: []byte(strconv.FormatUint(s.version, 10))},
				{Key: kafka.HeaderEventsOffset, Value: []byte("120")},
			}}
		if err := r.cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	r.p.stateMu.Lock()
	n, err := r.p.restoreSnapshots(context.Background(), r.p.cfg.Opts, []int32{0}, r.p.cfg.Log)
	r.p.stateMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("restored %d snapshots, want 1 (acc-2's)", n)
	}
	if got, _ := r.stored("acc-1"); got.Version != 150 {
		t.Errorf("acc-1 at version %d after restoring an older snapshot, want 150", got.Version)
	}
	if got, _ := r.stored("acc-2"); got.Version != 100 {
		t.Errorf("acc-2 at version %d, want 100 from its snapshot", got.Version)
	}
}

func mustState(t *testing.T, p *Processor, st account.State) []byte {
	t.Helper()
	b, err := p.cfg.Codec.EncodeState(st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOwnershipFollowsEveryRebalance: three processors join one after the
// other, with no command in between, so no transaction ends between the
// rebalances. franz-go's GroupTransactSession reports only the first
// revocation until the next End; the first processor used to go on
// believing it owned partitions the second rebalance gave away, and its
// follower left them alone: the node served their state stale.
func TestOwnershipFollowsEveryRebalance(t *testing.T) {
	names := kafka.Names{Namespace: "t"}
	var topics []string
	for _, spec := range names.AggregateTopics(account.Name, 4) {
		topics = append(topics, spec.Name)
	}
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topics...))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	opts := []kgo.Opt{kgo.SeedBrokers(kc.ListenAddrs()...)}
	ctx, cancel := context.WithCancel(context.Background())
	var procs []*Processor
	var dbs []*store.DB
	done := make(chan error, 3)
	// The stores close only after every processor has returned: a
	// deferred Close per store would run first (defers run last in, first
	// out) and pull the store from under a running processor.
	defer func() {
		cancel()
		for range procs {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
		for _, db := range dbs {
			db.Close()
		}
	}()
	// owners returns who owns each partition, and the partitions owned
	// twice.
	owners := func() (map[int32][]int, bool) {
		m := map[int32][]int{}
		twice := false
		for i, p := range procs {
			for _, part := range p.Status().Owned {
				m[part] = append(m[part], i)
				twice = twice || len(m[part]) > 1
			}
		}
		return m, twice
	}
	for i := range 3 {
		db, err := store.Open(t.TempDir(), store.Options{InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		dbs = append(dbs, db)
		p := New(Config{
			Codec: codec.Codec{Type: account.Type, Catalog: schemas.Default()},
			DB:    db, Names: names, Partitions: 4, InstanceID: "i" + strconv.Itoa(i), Opts: opts,
			SessionTimeout: 6 * time.Second,
		})
		procs = append(procs, p)
		go func() { done <- p.Run(ctx) }()
		// Wait for the group to settle with every member holding a share.
		deadline := time.Now().Add(30 * time.Second)
		for {
			m, twice := owners()
			shared := len(m) == 4 && !twice
			for _, p := range procs {
				shared = shared && len(p.Status().Owned) > 0
			}
			if shared {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("with %d processors, owners by partition %v: want each partition owned once, each processor owning one", len(procs), m)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestFollowerReportsItsProgress: until the follower has read the events
// topic up to where it ended at the start, on every partition the node
// does not own, the processor is not ready and says how far behind it is;
// transaction markers count, or a partition ending on one would never be
// caught up.
func TestFollowerReportsItsProgress(t *testing.T) {
	r := newFollowRig(t)
	r.event(0, "acc-1", 1, account.Opened{Holder: "Ada", InitialBalance: 10, Currency: "EUR"})
	r.event(0, "acc-1", 2, account.Deposited{Amount: 5})
	r.event(0, "acc-1", 3, account.Deposited{Amount: 7})
	// Partition 1 as the processor writes it: two events in a
	// transaction, then its commit marker.
	tx, err := kgo.NewClient(append(append([]kgo.Opt(nil), r.p.cfg.Opts...), kgo.TransactionalID("follow-progress"), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for v, ev := range []aggregates.Event{account.Opened{Holder: "Bo", InitialBalance: 1, Currency: "EUR"}, account.Deposited{Amount: 2}} {
		if err := tx.ProduceSync(ctx, r.record(1, "acc-2", uint64(v+1), ev)).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	r.p.mu.Lock()
	r.p.joined = true // a member owning no partition
	r.p.mu.Unlock()
	if st := r.p.Status(); st.FollowLag != -1 || st.FollowCaughtUp {
		t.Fatalf("before the follower started: lag %d, caught up %v; want -1 (unknown), false", st.FollowLag, st.FollowCaughtUp)
	}
	if ok, why := r.p.Ready(); ok || !strings.Contains(why, "restoring snapshots") {
		t.Fatalf("ready before the follower started: %v %q", ok, why)
	}
	f := r.newFollower()
	f.listEnds(ctx)
	f.progress()
	// 3 events on partition 0; 2 events and a marker on partition 1.
	if st := r.p.Status(); st.FollowLag != 6 || st.FollowCaughtUp {
		t.Fatalf("with nothing read: lag %d, caught up %v; want 6, false", st.FollowLag, st.FollowCaughtUp)
	}
	if ok, why := r.p.Ready(); ok || !strings.Contains(why, "6 offsets behind") {
		t.Fatalf("ready with nothing read: %v %q", ok, why)
	}
	r.follow(f)
	deadline := time.Now().Add(10 * time.Second)
	for st := r.p.Status(); !st.FollowCaughtUp || st.FollowLag != 0; st = r.p.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s of following: lag %d, caught up %v; want 0, true", st.FollowLag, st.FollowCaughtUp)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ok, why := r.p.Ready(); !ok {
		t.Fatalf("not ready once caught up: %q", why)
	}
	r.waitStored("acc-2", 2)
	r.noneStopped()
}
