package projections

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/internal/store"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Live keeps one projection's view current and rebuilds it blue/green: a
// rebuild writes a new generation of the view from offset 0 beside the
// live one, which keeps serving; once the new one has caught up, the two
// are swapped in one Pebble write and the old generation is dropped.
type Live struct {
	cfg RunnerConfig

	mu      sync.Mutex
	cur     *Runner
	stopCur context.CancelFunc
	swapped chan struct{} // closed and replaced at each swap
	rebuild *rebuildState
}

type rebuildState struct {
	runner  *Runner
	started time.Time
	total   int64 // offsets to apply, as of the start
	err     error
	done    bool
}

// RebuildStatus is the progress of a rebuild.
type RebuildStatus struct {
	Generation int       `json:"generation"`
	Applied    int64     `json:"applied"` // offsets applied
	Total      int64     `json:"total"`   // offsets to apply, as of the start
	Started    time.Time `json:"started"`
	ETA        string    `json:"eta,omitempty"`
	Done       bool      `json:"done"`
	Error      string    `json:"error,omitempty"`
}

const kindGeneration = 'g'

func generationKey(view string) []byte { return store.Key(kindGeneration, view) }

// NewLive returns the manager of one projection; Run starts it.
func NewLive(cfg RunnerConfig) (*Live, error) {
	gen := 0
	v, ok, err := cfg.DB.Get(generationKey(cfg.Projection.Name))
	if err != nil {
		return nil, err
	}
	if ok && len(v) == 8 {
		gen = int(binary.BigEndian.Uint64(v))
	}
	cfg.Generation = gen
	return &Live{cfg: cfg, cur: NewRunner(cfg), swapped: make(chan struct{})}, nil
}

// Current is the runner serving reads now.
func (l *Live) Current() *Runner {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

// Run keeps the current generation running until ctx ends, moving to the
// new one at each swap.
func (l *Live) Run(ctx context.Context) error {
	for {
		l.mu.Lock()
		r := l.cur
		rctx, cancel := context.WithCancel(ctx)
		l.stopCur = cancel
		swapped := l.swapped
		l.mu.Unlock()
		err := r.Run(rctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-swapped:
			continue // the rebuild swapped a new generation in
		default:
		}
		return err
	}
}

// Status is the current generation's status, with the rebuild's progress.
func (l *Live) Status() Status {
	st := l.Current().Status()
	l.mu.Lock()
	defer l.mu.Unlock()
	if rb := l.rebuild; rb != nil {
		rs := &RebuildStatus{Generation: rb.runner.cfg.Generation, Total: rb.total, Started: rb.started, Done: rb.done}
		if rb.err != nil {
			rs.Error = rb.err.Error()
		}
		rs.Applied = max(rb.total-rb.runner.Status().Lag, 0)
		if !rb.done && rs.Applied > 0 {
			el := time.Since(rb.started)
			rs.ETA = (time.Duration(float64(el) * float64(rs.Total-rs.Applied) / float64(rs.Applied))).Round(time.Second).String()
		}
		st.Rebuild = rs
		if !rb.done {
			st.State = "running, rebuilding"
		}
	}
	return st
}

// Rebuild starts building a new generation of the view from offset 0. The
// live one keeps serving; when the new one has applied at least as much,
// Rebuild swaps it in and drops the old. It returns once started (req
// bounds that); the rebuild runs until life ends. Status shows the
// progress.
func (l *Live) Rebuild(life, req context.Context) error {
	total, err := l.endOffsets(req)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rebuild != nil && !l.rebuild.done {
		return errors.New("a rebuild of this view is already running")
	}
	cfg := l.cfg
	cfg.Generation = l.cur.cfg.Generation + 1
	cfg.NoPublish = true
	cfg.Applied = position.NewTracker()
	// A rebuild replays the whole history: spans of long-finished traces
	// would only bury the live ones.
	cfg.Tracer = nil
	// Nor does it write the sinks: they keep the live generation's rows
	// until the swap, and the new live runner backfills them from the
	// new generation then (it has not been copied to them: see
	// openSinks). Writing them during the rebuild could mix the two
	// generations' rows, whose versions agree but whose contents may not
	// (a rebuild is usually for a changed Apply).
	cfg.Sinks = nil
	if err := DropStorage(l.cfg.DB, Storage(cfg.Projection.Name, cfg.Generation)); err != nil {
		return err // leftovers of an interrupted rebuild
	}
	rb := &rebuildState{runner: NewRunner(cfg), started: time.Now(), total: total}
	l.rebuild = rb
	go l.runRebuild(life, rb)
	return nil
}

func (l *Live) runRebuild(ctx context.Context, rb *rebuildState) {
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rb.runner.Run(rctx) }()
	finish := func(err error) {
		stop()
		<-done
		l.mu.Lock()
		rb.err, rb.done = err, true
		l.mu.Unlock()
	}
	log := l.cfg.Log
	for {
		select {
		case err := <-done:
			if err == nil {
				err = ctx.Err()
			}
			l.mu.Lock()
			rb.err, rb.done = fmt.Errorf("rebuild stopped: %v", err), true
			l.mu.Unlock()
			return
		case <-time.After(200 * time.Millisecond):
		}
		if !l.caughtUp(rb.runner) {
			continue
		}
		// Swap: stop the live generation, record the new one, and run it
		// (with publishing) from where the rebuild left it.
		stop()
		<-done
		l.mu.Lock()
		old := l.cur
		oldStop := l.stopCur
		cfg := l.cfg
		cfg.Generation = rb.runner.cfg.Generation
		b := l.cfg.DB.NewBatch()
		err := b.Set(generationKey(cfg.Projection.Name), binary.BigEndian.AppendUint64(nil, uint64(cfg.Generation)), nil)
		if err == nil {
			err = l.cfg.DB.Commit(b)
		} else {
			b.Close()
		}
		if err != nil {
			l.mu.Unlock()
			finish(fmt.Errorf("record the new generation: %w", err))
			return
		}
		l.cur = NewRunner(cfg)
		close(l.swapped)
		l.swapped = make(chan struct{})
		rb.done = true
		l.mu.Unlock()
		oldStop()
		if log != nil {
			log.Info("projection rebuilt and swapped in", "projection", cfg.Projection.Name, "generation", cfg.Generation, "took", time.Since(rb.started).Round(time.Millisecond))
		}
		if err := DropStorage(l.cfg.DB, old.storage()); err != nil && log != nil {
			log.Error("dropping the old generation of a view", "storage", old.storage(), "err", err)
		}
		return
	}
}

// endOffsets sums the last stable offsets of the projection's topics: what
// a rebuild has to read.
func (l *Live) endOffsets(ctx context.Context) (int64, error) {
	cl, err := kgo.NewClient(l.cfg.Opts...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var topics []string
	for _, agg := range l.cfg.Projection.Aggregates {
		topics = append(topics, l.cfg.Names.Events(agg))
	}
	offs, err := kafka.ListOffsets(ctx, kadm.NewClient(cl).ListCommittedOffsets, l.cfg.Partitions, topics...)
	if err != nil {
		return 0, err
	}
	var total int64
	offs.Each(func(o kadm.ListedOffset) { total += o.Offset })
	return total, nil
}

// caughtUp reports whether rb has applied at least what the live
// generation has, on every partition, and has nothing left to read.
func (l *Live) caughtUp(rb *Runner) bool {
	st := rb.Status()
	if st.State != "running" || st.Lag > 0 || len(st.Partitions) == 0 {
		return false
	}
	live := l.Current()
	for _, p := range live.Status().Partitions {
		tp := position.TP{Topic: p.Topic, Partition: p.Partition}
		if rb.cfg.Applied.Next(tp) < live.cfg.Applied.Next(tp) {
			return false
		}
	}
	return true
}

// DropStorage deletes every key of one stored generation of a view: rows,
// offsets, indexes, projection state and parked events.
func DropStorage(db *store.DB, storage string) error {
	b := db.NewBatch()
	for _, kind := range []byte{kindRow, kindOffset, kindIndex, kindState, kindParked, kindParkedOwner, kindVersion, kindSinkSync} {
		prefix := append(store.Key(kind, storage), 0)
		if err := b.DeleteRange(prefix, store.PrefixEnd(prefix), nil); err != nil {
			b.Close()
			return err
		}
	}
	return db.Commit(b)
}
