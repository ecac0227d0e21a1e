package projections

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-es/strata/internal/codec"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/internal/store"
	"github.com/strata-es/strata/internal/tracing"
	"github.com/strata-es/strata/schemas"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Key kinds of the views' keyspace in the state store.
const (
	kindRow    = 'v'
	kindOffset = 'o'
)

// RowKey is the key of a view row.
func RowKey(view, key string) []byte { return store.Key(kindRow, view, key) }

func offsetKey(proj, topic string, partition int32) []byte {
	return binary.BigEndian.AppendUint32(append(store.Key(kindOffset, proj, topic), 0), uint32(partition))
}

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	Projection Projection
	Codecs     map[string]codec.Codec // by aggregate type
	DB         *store.DB
	Names      kafka.Names
	Partitions int32
	Opts       []kgo.Opt
	Log        *slog.Logger
	// Applied receives the events positions the view has applied.
	Applied *position.Tracker
	// Catalog encodes published rows. Default schemas.Default().
	Catalog *schemas.Catalog
	// Generation of the view this runner keeps (see Live). A rebuild
	// writes generation n+1 beside n.
	Generation int
	// NoPublish keeps a published view off its topic (a rebuild in
	// progress).
	NoPublish bool
	// Tracer records a span for each event applied, a child of the span
	// context in the event's headers. Default nil: tracing off; a
	// published view's records still carry the context of the event that
	// changed them last.
	Tracer *tracing.Tracer
	// Sinks keep copies of the view in external stores (see Sink). Each
	// batch reaches every sink before it is committed to Pebble; a sink
	// that fails holds the view back until it takes the batch. The
	// runner opens them but does not close them: their owner does, after
	// the runner stopped. Default none.
	Sinks []Sink
	// OnSinkWrite, when set, is told of every attempt at a sink (Open or
	// Write), for metrics.
	OnSinkWrite func(sink string, took time.Duration, err error)
}

// Runner keeps one projection's view up to date.
type Runner struct {
	cfg RunnerConfig

	mu     sync.Mutex
	status Status
	ends   map[position.TP]int64 // last stable offsets seen
	last   time.Time             // of the last batch, for the rate
	parked map[string]parkedOwner

	// Used by the run loop only.
	ctx     context.Context
	pub     *publisher
	retries chan chan retryResult
	wake    context.CancelFunc
}

type retryResult struct {
	unparked int
	err      error
}

// storage is the name the view's keys are stored under.
func (r *Runner) storage() string { return Storage(r.cfg.Projection.Name, r.cfg.Generation) }

// Storage is the name a view's generation is stored under: the view's
// name for generation 0, name#gen after rebuilds.
func Storage(view string, gen int) string {
	if gen == 0 {
		return view
	}
	return view + "#" + strconv.Itoa(gen)
}

// Storage is the name this runner's rows are stored under.
func (r *Runner) Storage() string { return r.storage() }

// wakeUp ends the runner's wait for records, if it waits: it has
// something else to do.
func (r *Runner) wakeUp() {
	r.mu.Lock()
	if r.wake != nil {
		r.wake()
	}
	r.mu.Unlock()
}

// Retry replays the events of the parked aggregates (after a fix of the
// projection) and returns how many aggregates it unparked.
func (r *Runner) Retry(ctx context.Context) (int, error) {
	ch := make(chan retryResult, 1)
	select {
	case r.retries <- ch:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	r.wakeUp()
	select {
	case res := <-ch:
		return res.unparked, res.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Status is what a runner is doing.
type Status struct {
	Name    string    `json:"name"`
	State   string    `json:"state"` // starting, running, stopped, failed
	Error   string    `json:"error,omitempty"`
	Applied int64     `json:"applied"` // events applied since start
	Since   time.Time `json:"since"`
	// Failed are the partitions stopped at an event the projection cannot
	// decode or apply ("topic/partition" → reason naming the offset); the
	// view no longer advances for them, and the others go on.
	Failed map[string]string `json:"failed,omitempty"`
	// Lag is how many offsets the view is behind the end of what is
	// committed on its topics, as of the last fetch; Rate the events
	// applied per second, smoothed.
	Lag        int64             `json:"lag"`
	Rate       float64           `json:"rate_per_s"`
	Partitions []PartitionStatus `json:"partitions"`
	// Parked are the aggregates whose events the projection set aside
	// after failing to apply one (strata projection retry replays them).
	Parked []Parked `json:"parked,omitempty"`
	// Generation is the stored generation of the view (see Live);
	// Rebuild the progress of a rebuild, when one ran.
	Generation int            `json:"generation"`
	Rebuild    *RebuildStatus `json:"rebuild,omitempty"`
	// Sinks are the external stores the view is copied to.
	Sinks []SinkStatus `json:"sinks,omitempty"`
}

// PartitionStatus is how far a view is in one partition.
type PartitionStatus struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Applied   int64  `json:"applied"` // next offset to apply
	End       int64  `json:"end"`     // last stable offset seen
	Lag       int64  `json:"lag"`
}

// NewRunner returns a runner; Run starts it.
func NewRunner(cfg RunnerConfig) *Runner {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Applied == nil {
		cfg.Applied = position.NewTracker()
	}
	if cfg.Catalog == nil {
		cfg.Catalog = schemas.Default()
	}
	r := &Runner{cfg: cfg, status: Status{Name: cfg.Projection.Name, State: "starting", Since: time.Now()}, ends: map[position.TP]int64{},
		parked: map[string]parkedOwner{}, retries: make(chan chan retryResult, 8)}
	for _, s := range cfg.Sinks {
		// Down until opened: a view whose sink was never reached is not
		// copied anywhere yet.
		r.status.Sinks = append(r.status.Sinks, SinkStatus{Name: s.Name(), Error: "not opened yet", Since: r.status.Since})
	}
	return r
}

// Applied is the tracker of what the view has applied.
func (r *Runner) Applied() *position.Tracker { return r.cfg.Applied }

// Status returns the runner's status.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.status
	st.Generation = r.cfg.Generation
	st.Partitions = nil
	st.Lag = 0
	for tp, end := range r.ends {
		next := r.cfg.Applied.Next(tp)
		lag := max(end-next, 0)
		st.Partitions = append(st.Partitions, PartitionStatus{Topic: tp.Topic, Partition: tp.Partition, Applied: next, End: end, Lag: lag})
		st.Lag += lag
	}
	sort.Slice(st.Partitions, func(i, j int) bool {
		a, b := st.Partitions[i], st.Partitions[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
	if len(r.parked) > 0 {
		owners := make(map[string]parkedOwner, len(r.parked))
		for k, v := range r.parked {
			owners[k] = v
		}
		st.Parked = parkedStatus(r.cfg.DB, r.storage(), owners)
	}
	st.Sinks = append([]SinkStatus(nil), r.status.Sinks...)
	if len(st.Failed) > 0 {
		st.Failed = make(map[string]string, len(r.status.Failed))
		for k, v := range r.status.Failed {
			st.Failed[k] = v
		}
	}
	return st
}

func (r *Runner) setState(state string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.State, r.status.Since = state, time.Now()
	if err != nil {
		r.status.Error = err.Error()
	}
}

// Run applies events until ctx ends. It returns an error, and its status
// says failed, when an event cannot be decoded or applied: a view that
// skipped an event would be silently wrong.
func (r *Runner) Run(ctx context.Context) error {
	err := r.run(ctx)
	if err != nil && ctx.Err() == nil {
		r.setState("failed", err)
		return fmt.Errorf("projection %s: %w", r.cfg.Projection.Name, err)
	}
	r.setState("stopped", nil)
	return nil
}

func (r *Runner) run(ctx context.Context) error {
	p := r.cfg.Projection
	db := r.cfg.DB.Pebble()
	r.ctx = ctx
	parked, err := loadParked(r.cfg.DB, r.storage())
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.parked = parked
	r.mu.Unlock()
	start := map[string]map[int32]kgo.Offset{}
	topicAgg := map[string]string{}
	for _, agg := range p.Aggregates {
		if _, ok := r.cfg.Codecs[agg]; !ok {
			return fmt.Errorf("reads aggregate %q, which is not registered", agg)
		}
		topic := r.cfg.Names.Events(agg)
		topicAgg[topic] = agg
		start[topic] = map[int32]kgo.Offset{}
		for part := int32(0); part < r.cfg.Partitions; part++ {
			next, err := loadOffset(db, r.storage(), topic, part)
			if err != nil {
				return err
			}
			start[topic][part] = kgo.NewOffset().At(next)
			r.cfg.Applied.Advance(position.TP{Topic: topic, Partition: part}, next)
		}
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), r.cfg.Opts...),
		kgo.ConsumePartitions(start),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records (transaction markers) come through so that the
		// applied offsets reach the end of each partition exactly: the
		// lag of a caught-up view is 0, not the last marker.
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	var topics []string
	for topic := range start {
		topics = append(topics, topic)
	}
	if !r.seedEnds(ctx, cl, topics) {
		return nil
	}
	if ok, err := r.openSinks(ctx, topics); !ok {
		return err
	}
	var pub *publisher
	// publishFailed is what run returns when a publish failed: nothing
	// when it failed because the runner is stopping.
	publishFailed := func(err error) error {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("publish view %s: %w", p.Name, err)
	}
	if p.Publish && !r.cfg.NoPublish {
		pub, err = newPublisher(r.cfg.Opts, r.cfg.Catalog, p, r.cfg.Names.View(p.Name), r.wakeUp)
		if err != nil {
			return err
		}
		r.pub = pub
		defer pub.close()
		pctx, stop := context.WithCancel(ctx)
		defer stop()
		go pub.run(pctx)
	}
	r.setState("running", nil)
	var traced []*applyTrace // of the batch, ended once it is stored
	defer func() { endApplies(traced, errors.New("the projection stopped before the batch was stored")) }()
	for {
		select {
		case ch := <-r.retries:
			n, err := r.retryParked()
			ch <- retryResult{n, err}
		default:
		}
		if pub != nil && pub.behind() {
			// Just elected: publish the whole view now. A view that sees
			// no change for a while would otherwise stay off its topic
			// (or keep what the last publisher wrote) until it does.
			if err := pub.publish(ctx, r.cfg.DB, r.storage(), newChanges()); err != nil {
				return publishFailed(err)
			}
		}
		pctx, wake := context.WithCancel(ctx)
		r.mu.Lock()
		r.wake = wake
		r.mu.Unlock()
		if pub != nil && pub.behind() {
			wake() // elected since the look above, before r.wake was set
		}
		fetches := cl.PollFetches(pctx)
		wake()
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(t string, part int32, err error) {
			if !errors.Is(err, context.Canceled) {
				r.cfg.Log.Warn("fetch error; retrying", "projection", p.Name, "topic", t, "partition", part, "err", err)
			}
		})
		if fetches.NumRecords() == 0 {
			continue
		}
		b := r.cfg.DB.NewIndexedBatch()
		rows := newRowCache(p.Row) // the rows of this batch
		next := map[position.TP]int64{}
		changed := newChanges()
		var failedNow map[string][]int32
		var parkErr error // the batch cannot be stored whole
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			r.mu.Lock()
			if fp.LastStableOffset > 0 {
				r.ends[position.TP{Topic: fp.Topic, Partition: fp.Partition}] = fp.LastStableOffset
			}
			r.mu.Unlock()
			for _, rec := range fp.Records {
				if rec.Attrs.IsControl() {
					next[position.TP{Topic: rec.Topic, Partition: rec.Partition}] = rec.Offset + 1
					continue
				}
				agg := topicAgg[rec.Topic]
				owner := ownerID(agg, string(rec.Key))
				r.mu.Lock()
				_, isParked := r.parked[owner]
				r.mu.Unlock()
				if isParked {
					// Later events of a parked aggregate wait with it.
					if err := park(b, r.storage(), agg, rec); err != nil {
						parkErr = fmt.Errorf("parking the event at %s partition %d offset %d: %w", rec.Topic, rec.Partition, rec.Offset, err)
						return
					}
					next[position.TP{Topic: rec.Topic, Partition: rec.Partition}] = rec.Offset + 1
					continue
				}
				var at *applyTrace
				if r.traced(rec) {
					at = r.startApply(rec, agg)
					traced = append(traced, at)
				}
				err := r.apply(b, rows, agg, rec, changed, at.carried())
				var de *decodeError
				if err != nil && !errors.As(err, &de) {
					err = r.retryApply(b, rows, agg, rec, changed, at.carried(), err)
				}
				if err != nil && !errors.As(err, &de) {
					// Still failing: park the aggregate, go on with the others.
					po := parkedOwner{Reason: fmt.Sprintf("event at %s partition %d offset %d: %v", rec.Topic, rec.Partition, rec.Offset, err), Since: time.Now().UTC()}
					v, _ := json.Marshal(po)
					if perr := errors.Join(b.Set(parkedOwnerKey(r.storage(), agg, string(rec.Key)), v, nil), park(b, r.storage(), agg, rec)); perr != nil {
						parkErr = fmt.Errorf("parking the event at %s partition %d offset %d: %w", rec.Topic, rec.Partition, rec.Offset, perr)
						return
					}
					r.cfg.Log.Warn("projection parked an aggregate: an event failed to apply after retries (strata projection retry replays it)", "projection", p.Name,
						"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "command_id", commandID(rec), "aggregate", agg, "aggregate_id", string(rec.Key), "err", err)
					at.fail("parked: " + po.Reason)
					r.mu.Lock()
					r.parked[owner] = po
					r.mu.Unlock()
					next[position.TP{Topic: rec.Topic, Partition: rec.Partition}] = rec.Offset + 1
					continue
				}
				if err != nil {
					key := fmt.Sprintf("%s/%d", rec.Topic, rec.Partition)
					r.cfg.Log.Error("projection cannot apply an event; this partition stops here until it is fixed (see /v1/status)",
						"projection", p.Name, "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "command_id", commandID(rec), "err", err)
					r.mu.Lock()
					if r.status.Failed == nil {
						r.status.Failed = map[string]string{}
					}
					r.status.Failed[key] = fmt.Sprintf("event at %s partition %d offset %d: %v", rec.Topic, rec.Partition, rec.Offset, err)
					r.mu.Unlock()
					at.fail("the partition stops here: " + err.Error())
					if failedNow == nil {
						failedNow = map[string][]int32{}
					}
					failedNow[rec.Topic] = append(failedNow[rec.Topic], rec.Partition)
					return
				}
				next[position.TP{Topic: rec.Topic, Partition: rec.Partition}] = rec.Offset + 1
			}
		})
		if parkErr != nil {
			// The records after it were fetched and will not come again:
			// writing none of the batch and stopping loses none of them (a
			// restart reads on from the stored offsets).
			b.Close()
			return fmt.Errorf("projection %s: %w", p.Name, parkErr)
		}
		if failedNow != nil {
			cl.PauseFetchPartitions(failedNow)
		}
		for tp, off := range next {
			if err := b.Set(offsetKey(r.storage(), tp.Topic, tp.Partition), binary.BigEndian.AppendUint64(nil, uint64(off)), nil); err != nil {
				b.Close()
				return err
			}
		}
		// Publish before the rows reach Pebble: a crash between the two
		// re-applies and republishes the same rows (the topic is
		// compacted); the other order could lose an update.
		if pub != nil {
			if err := pub.publish(ctx, r.cfg.DB, r.storage(), changed); err != nil {
				b.Close()
				return publishFailed(err)
			}
		}
		// The sinks take the batch before Pebble does, for the same
		// reason: a crash in between replays it to them, and their
		// version guards make the replay harmless.
		if ok, err := r.writeSinks(ctx, b, changed, next); !ok {
			b.Close()
			return err
		}
		if err := r.cfg.DB.Commit(b); err != nil {
			return fmt.Errorf("write view %s: %w", p.Name, err)
		}
		for tp, off := range next {
			r.cfg.Applied.Advance(tp, off)
		}
		endApplies(traced, nil)
		clear(traced)
		traced = traced[:0]
		var n int64
		fetches.EachRecord(func(rec *kgo.Record) {
			if !rec.Attrs.IsControl() && rec.Offset < next[position.TP{Topic: rec.Topic, Partition: rec.Partition}] {
				n++
			}
		})
		r.mu.Lock()
		r.status.Applied += n
		if now := time.Now(); !r.last.IsZero() {
			if dt := now.Sub(r.last).Seconds(); dt > 0 {
				r.status.Rate = 0.7*r.status.Rate + 0.3*float64(n)/dt
			}
			r.last = now
		} else {
			r.last = now
		}
		r.mu.Unlock()
	}
}

// seedEnds reads the last stable offsets of the projection's topics, so
// that its lag (Status, /readyz, the metrics) is known before its first
// fetch: a view far behind must not look caught up for the moment after a
// start. Fetches keep them current from then on. It retries until it
// succeeds, and returns false when ctx ended first.
func (r *Runner) seedEnds(ctx context.Context, cl *kgo.Client, topics []string) bool {
	adm := kadm.NewClient(cl)
	for {
		offs, err := kafka.ListOffsets(ctx, adm.ListCommittedOffsets, r.cfg.Partitions, topics...)
		if err == nil {
			r.mu.Lock()
			offs.Each(func(o kadm.ListedOffset) {
				tp := position.TP{Topic: o.Topic, Partition: o.Partition}
				if _, seen := r.ends[tp]; !seen {
					r.ends[tp] = o.Offset
				}
			})
			r.mu.Unlock()
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.cfg.Log.Warn("projection: reading the end offsets of its topics failed; retrying", "projection", r.cfg.Projection.Name, "topics", topics, "err", err)
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return false
		}
	}
}

// apply applies one record to the batch. Apply's writes are buffered and
// only reach b when every event of the record applied, so a failing record
// leaves no part of itself behind. The rows it changes carry the trace
// headers on when they are published.
func (r *Runner) apply(b *pebble.Batch, rows *rowCache, agg string, rec *kgo.Record, changed *changes, trace []kgo.RecordHeader) error {
	evs, err := decode(r.cfg.Codecs[agg], rec)
	if err != nil {
		return &decodeError{err}
	}
	tx := &batchTx{b: b, view: r.storage(), indexes: r.cfg.Projection.Indexes, pending: map[string][]byte{}, state: map[string][]byte{}, changed: changed, trace: trace,
		cache: rows, vals: map[string]cachedRow{}, touched: map[string]bool{}, bumps: map[string]uint64{}}
	for _, ev := range evs {
		if err := r.cfg.Projection.Apply(tx, ev); err != nil {
			return err
		}
		// A row's version counts the events that wrote it, once each
		// however often an event wrote it.
		for key := range tx.touched {
			tx.bumps[key]++
		}
		clear(tx.touched)
	}
	return tx.flush()
}

// decodeError is an event the projection cannot read at all: it stops the
// partition rather than being parked.
type decodeError struct{ err error }

func (e *decodeError) Error() string { return e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

// retryApply tries a failed event again, with backoff.
func (r *Runner) retryApply(b *pebble.Batch, rows *rowCache, agg string, rec *kgo.Record, changed *changes, trace []kgo.RecordHeader, err error) error {
	for _, d := range applyRetries {
		select {
		case <-time.After(d):
		case <-r.ctx.Done():
			return err
		}
		if err = r.apply(b, rows, agg, rec, changed, trace); err == nil {
			return nil
		}
	}
	return err
}

func loadOffset(db pebble.Reader, proj, topic string, part int32) (int64, error) {
	v, c, err := db.Get(offsetKey(proj, topic, part))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: offset of projection %s %s/%d", store.ErrCorrupt, proj, topic, part)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// commandID is the ID of the command that wrote an event record, for logs.
func commandID(rec *kgo.Record) string {
	for _, h := range rec.Headers {
		if h.Key == kafka.HeaderCommandID {
			return string(h.Value)
		}
	}
	return ""
}

// decode reads one events-topic record: usually one event, more or none
// when an upcaster splits or drops it.
func decode(c codec.Codec, rec *kgo.Record) ([]Event, error) {
	datas, _, err := c.DecodeEvents(rec.Value)
	if err != nil {
		return nil, err
	}
	base := Event{
		Aggregate:   c.Type.Name(),
		AggregateID: string(rec.Key),
		Timestamp:   rec.Timestamp,
		Topic:       rec.Topic,
		Partition:   rec.Partition,
		Offset:      rec.Offset,
	}
	if base.AggregateID == "" {
		// Strata keys every event by its aggregate's ID; a record
		// without one belongs to no aggregate, and the write side stops
		// at it too.
		return nil, errors.New("no key, so no aggregate ID")
	}
	for _, h := range rec.Headers {
		switch h.Key {
		case kafka.HeaderVersion:
			base.Version, err = strconv.ParseUint(string(h.Value), 10, 64)
			if err != nil || base.Version == 0 {
				return nil, fmt.Errorf("bad %s header %q", kafka.HeaderVersion, h.Value)
			}
		case kafka.HeaderCommandID:
			base.CommandID = string(h.Value)
		}
	}
	if base.Version == 0 {
		return nil, fmt.Errorf("no %s header: the event's place in its aggregate's history is unknown", kafka.HeaderVersion)
	}
	evs := make([]Event, len(datas))
	for i, d := range datas {
		evs[i] = base
		evs[i].Type, evs[i].Data = d.EventType(), d
	}
	return evs, nil
}

// batchTx is the Tx of one record: writes wait in pending (nil: deleted)
// until flush; reads see them first, then the batch, then the database.
type batchTx struct {
	b       *pebble.Batch
	view    string
	indexes []Index
	pending map[string][]byte
	state   map[string][]byte
	changed *changes             // rows changed in the batch, for publishing
	trace   []kgo.RecordHeader   // the trace context the record's changes carry on
	cache   *rowCache            // rows of the batch, decoded
	vals    map[string]cachedRow // pending rows, decoded, when cacheable
	touched map[string]bool      // rows the current event wrote
	bumps   map[string]uint64    // events of the record that wrote each row
}

const kindState = 'p'

func stateKey(view, key string) []byte { return store.Key(kindState, view, key) }

func (t *batchTx) GetState(key string, v any) (bool, error) {
	raw, ok := t.state[key]
	if !ok {
		val, c, err := t.b.Get(stateKey(t.view, key))
		if errors.Is(err, pebble.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		raw = append([]byte(nil), val...)
		c.Close()
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("%w: state %q of projection %s: %v", store.ErrCorrupt, key, t.view, err)
	}
	return true, nil
}

func (t *batchTx) PutState(key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	t.state[key] = raw
	return nil
}

func (t *batchTx) Get(key string, row any) (bool, error) {
	if v, ok := t.pending[key]; ok {
		if v == nil {
			return false, nil
		}
		if cv, ok := t.vals[key]; ok && t.cache.set(cv, row) {
			return true, nil
		}
		return true, t.decode(key, v, row)
	}
	if found, ok := t.cache.get(key, row); found {
		return ok, nil
	}
	v, c, err := t.b.Get(RowKey(t.view, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer c.Close()
	if err := t.decode(key, v, row); err != nil {
		return false, err
	}
	if cv, ok := t.cache.value(row); ok {
		t.cache.rows[key] = cachedRow{val: cv}
	}
	return true, nil
}

func (t *batchTx) decode(key string, v []byte, row any) error {
	if err := json.Unmarshal(v, row); err != nil {
		return fmt.Errorf("%w: row %q of view %s: %v", store.ErrCorrupt, key, t.view, err)
	}
	return nil
}

func (t *batchTx) Put(key string, row any) error {
	v, err := json.Marshal(row)
	if err != nil {
		return fmt.Errorf("view %s row %q: %w", t.view, key, err)
	}
	t.pending[key] = v
	t.touched[key] = true
	if cv, ok := t.cache.value(row); ok {
		t.vals[key] = cachedRow{val: cv}
	} else {
		delete(t.vals, key)
	}
	return nil
}

func (t *batchTx) Delete(key string) error {
	t.pending[key] = nil
	t.touched[key] = true
	t.vals[key] = cachedRow{deleted: true}
	return nil
}

func (t *batchTx) flush() error {
	for key, raw := range t.state {
		if err := t.b.Set(stateKey(t.view, key), raw, nil); err != nil {
			return err
		}
	}
	for key, v := range t.pending {
		if len(t.indexes) > 0 {
			var old json.RawMessage
			o, c, err := t.b.Get(RowKey(t.view, key))
			switch {
			case err == nil:
				old = append(json.RawMessage(nil), o...)
				c.Close()
			case !errors.Is(err, pebble.ErrNotFound):
				return err
			}
			if err := reindex(t.b, t.view, t.indexes, key, old, v); err != nil {
				return err
			}
		}
		t.changed.set(key, v, t.trace)
		if cv, ok := t.vals[key]; ok && t.cache.typ != nil {
			t.cache.rows[key] = cv
		} else if t.cache.typ != nil {
			delete(t.cache.rows, key)
		}
		var err error
		if v == nil {
			err = t.b.Delete(RowKey(t.view, key), nil)
		} else {
			err = t.b.Set(RowKey(t.view, key), v, nil)
		}
		if err != nil {
			return err
		}
		if n := t.bumps[key]; n > 0 {
			ver, err := rowVersion(t.b, t.view, key)
			if err != nil {
				return err
			}
			if err := t.b.Set(versionKey(t.view, key), binary.BigEndian.AppendUint64(nil, ver+n), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// GetRow returns the JSON of a view row from db.
func GetRow(db *store.DB, view, key string) (json.RawMessage, bool, error) {
	v, ok, err := db.Get(RowKey(view, key))
	return v, ok, err
}
