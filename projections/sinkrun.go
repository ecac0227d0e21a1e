package projections

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/internal/store"
)

// How the runner feeds its sinks.
//
// Order per batch: apply the events into an uncommitted Pebble batch →
// publish the changed rows (publish.go) → Write them to every sink → commit
// the Pebble batch. A sink that fails gets the same batch again, with
// backoff, until it takes it; the batch is kept, not re-applied: its events
// are already fetched and will not come again from the client, and
// applying them again to a fresh batch would give the same rows and
// versions (Apply is deterministic), so keeping it is the same result for
// less work. Only the sinks that failed are retried: the others have the
// batch, and writing it again would be a no-op behind their version guards.
// While a sink is down, the view stops advancing (reads keep serving what
// Pebble has), Status says which sink, since when and why, and the runner
// fetches nothing more; nothing is skipped.
//
// A crash between a sink's Write and the Pebble commit replays the batch on
// restart, maybe cut into other batches: each row comes again with the same
// version, which a sink keeps only if higher than what it has.

// Key kinds of a view's row versions and of the sinks it has backfilled.
const (
	kindVersion  = 'w' // w view key → uint64 RowVersion (kept after a delete)
	kindSinkSync = 'y' // y view sink → the sink has every row of this storage
)

func versionKey(view, key string) []byte { return store.Key(kindVersion, view, key) }

func sinkSyncKey(view, sink string) []byte { return store.Key(kindSinkSync, view, sink) }

// rowVersion reads the RowVersion of a row: 0 when no event wrote it (or
// when it was written before Strata kept versions).
func rowVersion(r pebble.Reader, view, key string) (uint64, error) {
	v, c, err := r.Get(versionKey(view, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: version of row %q of view %s", store.ErrCorrupt, key, view)
	}
	return binary.BigEndian.Uint64(v), nil
}

// RowVersion returns the RowVersion of a view row: how many events wrote
// it (see SinkRow.Version).
func RowVersion(db *store.DB, view, key string) (uint64, error) {
	return rowVersion(db.Pebble(), view, key)
}

// SinkStatus is the state of one of a view's sinks.
type SinkStatus struct {
	Name string `json:"name"`
	// Up is true once the sink took the last batch or backfill chunk it
	// was given; Error is why it did not, Since when it went up or down.
	Up    bool      `json:"up"`
	Error string    `json:"error,omitempty"`
	Since time.Time `json:"since"`
	// Errors counts the failed attempts since the runner started.
	Errors int64 `json:"errors"`
	// Backfilling is true while the runner copies Pebble's rows to a sink
	// that was behind the view.
	Backfilling bool `json:"backfilling,omitempty"`
}

// Waits between attempts at a sink: doubling from sinkRetryMin, capped at
// sinkRetryMax, so a server down for an hour is asked twice a minute and one
// back after a blip is used again at once. sinkTimeout bounds one attempt,
// so a server that hangs counts as down rather than stopping the view
// silently.
var (
	sinkRetryMin = 100 * time.Millisecond
	sinkRetryMax = 30 * time.Second
	sinkTimeout  = 30 * time.Second
)

// backfillChunk is how many rows one backfill batch carries.
const backfillChunk = 500

func (r *Runner) setSink(i int, err error, took time.Duration) {
	if r.cfg.OnSinkWrite != nil {
		r.cfg.OnSinkWrite(r.cfg.Sinks[i].Name(), took, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.status.Sinks[i]
	up := err == nil
	if up != s.Up {
		s.Since = time.Now()
		if up {
			r.cfg.Log.Info("projection: a sink takes writes again", "projection", r.cfg.Projection.Name, "sink", s.Name)
		} else {
			r.cfg.Log.Warn("projection: a sink failed; the view waits for it, retrying with backoff", "projection", r.cfg.Projection.Name, "sink", s.Name, "err", err)
		}
	}
	s.Up = up
	s.Error = ""
	if err != nil {
		s.Error = err.Error()
		s.Errors++
	}
}

// retrySinks runs attempt for every sink in todo until each has succeeded
// once, retrying the failed ones with backoff. It returns false when ctx
// ended first.
func (r *Runner) retrySinks(ctx context.Context, todo []int, attempt func(ctx context.Context, s Sink) error) bool {
	for delay := sinkRetryMin; ; delay = min(2*delay, sinkRetryMax) {
		failed := todo[:0:0]
		for _, i := range todo {
			actx, cancel := context.WithTimeout(ctx, sinkTimeout)
			t0 := time.Now()
			err := attempt(actx, r.cfg.Sinks[i])
			cancel()
			if ctx.Err() != nil {
				return false
			}
			if err != nil {
				err = fmt.Errorf("sink %s: %w", r.cfg.Sinks[i].Name(), err)
				failed = append(failed, i)
			}
			r.setSink(i, err, time.Since(t0))
		}
		if len(failed) == 0 {
			return true
		}
		todo = failed
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return false
		}
	}
}

func allSinks(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// writeSinks hands the batch's changed rows, with their versions as b has
// them, and the offsets after the batch to every sink, until each took
// them. It returns false when ctx ended first, an error when the batch's
// versions cannot be read.
func (r *Runner) writeSinks(ctx context.Context, b *pebble.Batch, changed *changes, next map[position.TP]int64) (bool, error) {
	if len(r.cfg.Sinks) == 0 {
		return true, nil
	}
	batch := SinkBatch{Offsets: next, Rows: make([]SinkRow, 0, len(changed.rows))}
	for key, v := range changed.rows {
		ver, err := rowVersion(b, r.storage(), key)
		if err != nil {
			return false, err // a broken store, not a sink problem: nothing a retry fixes
		}
		batch.Rows = append(batch.Rows, SinkRow{Key: key, Version: ver, Row: v})
	}
	slices.SortFunc(batch.Rows, func(a, b SinkRow) int { return compareStrings(a.Key, b.Key) })
	return r.retrySinks(ctx, allSinks(len(r.cfg.Sinks)), func(ctx context.Context, s Sink) error { return s.Write(ctx, batch) }), nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// openSinks opens every sink (retrying those that fail) and backfills the
// ones behind the view: a new sink, a wiped store, one that was off while
// the view went on, or a view generation the sink has not been copied from
// yet (after a rebuild's swap, whose rows may differ with the same
// versions). It returns false when ctx ended first, an error when the
// view's own rows cannot be read.
func (r *Runner) openSinks(ctx context.Context, topics []string) (bool, error) {
	if len(r.cfg.Sinks) == 0 {
		return true, nil
	}
	view := map[position.TP]int64{}
	for _, topic := range topics {
		for part := int32(0); part < r.cfg.Partitions; part++ {
			tp := position.TP{Topic: topic, Partition: part}
			view[tp] = r.cfg.Applied.Next(tp)
		}
	}
	sv := SinkView{Name: r.cfg.Projection.Name, Namespace: r.cfg.Names.Namespace, Indexes: r.cfg.Projection.Indexes}
	if subj, ok := r.cfg.Catalog.Subject("views/" + r.cfg.Projection.Name); ok {
		sv.Schema = subj.Latest().Schema
	}
	stored := make([]map[position.TP]int64, len(r.cfg.Sinks))
	ok := r.retrySinks(ctx, allSinks(len(r.cfg.Sinks)), func(ctx context.Context, s Sink) error {
		offs, err := s.Open(ctx, sv)
		if err == nil {
			stored[slices.Index(r.cfg.Sinks, s)] = offs
		}
		return err
	})
	if !ok {
		return false, nil
	}
	for i, s := range r.cfg.Sinks {
		synced, err := r.synced(s.Name())
		if err != nil {
			return false, err
		}
		if synced && !behind(stored[i], view) {
			continue
		}
		r.mu.Lock()
		r.status.Sinks[i].Backfilling = true
		r.mu.Unlock()
		r.cfg.Log.Info("projection: backfilling a sink from the view's rows", "projection", r.cfg.Projection.Name, "sink", s.Name(), "copied_before", synced)
		t0 := time.Now()
		rows, ok, err := r.backfill(ctx, i, view)
		if !ok || err != nil {
			return false, err
		}
		b := r.cfg.DB.NewBatch()
		if err := b.Set(sinkSyncKey(r.storage(), s.Name()), nil, nil); err != nil {
			b.Close()
			return false, err
		}
		if err := r.cfg.DB.Commit(b); err != nil {
			return false, fmt.Errorf("recording the backfill of sink %s: %w", s.Name(), err)
		}
		r.mu.Lock()
		r.status.Sinks[i].Backfilling = false
		r.mu.Unlock()
		r.cfg.Log.Info("projection: sink backfilled", "projection", r.cfg.Projection.Name, "sink", s.Name(), "rows", rows, "took", time.Since(t0).Round(time.Millisecond))
	}
	return true, nil
}

// synced reports whether the sink was backfilled from this storage.
func (r *Runner) synced(sink string) (bool, error) {
	_, ok, err := r.cfg.DB.Get(sinkSyncKey(r.storage(), sink))
	return ok, err
}

// behind reports whether a sink's stored offsets miss events the view has.
func behind(sink, view map[position.TP]int64) bool {
	if sink == nil {
		return true
	}
	for tp, off := range view {
		if sink[tp] < off {
			return true
		}
	}
	return false
}

// backfill copies every row of the view, with its version, to sink i in
// chunks, then the deletions the view remembers (versions without a row),
// then the view's offsets: a sink that stored the offsets has every row.
// The rows come from Pebble as the runner left them; nothing writes this
// storage while it runs (the runner's loop has not started).
func (r *Runner) backfill(ctx context.Context, i int, offsets map[position.TP]int64) (int, bool, error) {
	sink := r.cfg.Sinks[i]
	write := func(rows []SinkRow, offs map[position.TP]int64) bool {
		b := SinkBatch{Rows: rows, Offsets: offs, Backfill: true}
		return r.retrySinks(ctx, []int{i}, func(ctx context.Context, s Sink) error { return sink.Write(ctx, b) })
	}
	n := 0
	rowPrefix := append(store.Key(kindRow, r.storage()), 0)
	verPrefix := append(store.Key(kindVersion, r.storage()), 0)
	for _, pass := range []struct {
		prefix []byte
		rows   bool
	}{{rowPrefix, true}, {verPrefix, false}} {
		lower := pass.prefix
		for {
			var chunk []SinkRow
			var last []byte
			var ferr error
			err := r.cfg.DB.ScanRange(lower, store.PrefixEnd(pass.prefix), func(k, v []byte) bool {
				key := string(k[len(pass.prefix):])
				last = append(last[:0], k...)
				if pass.rows {
					ver, err := rowVersion(r.cfg.DB.Pebble(), r.storage(), key)
					if err != nil {
						ferr = err
						return false
					}
					chunk = append(chunk, SinkRow{Key: key, Version: ver, Row: bytes.Clone(v)})
				} else {
					// A version without a row: deleted; the sink may still
					// have the row from before.
					_, ok, err := r.cfg.DB.Get(RowKey(r.storage(), key))
					if err != nil {
						ferr = err
						return false
					}
					if !ok && len(v) == 8 {
						chunk = append(chunk, SinkRow{Key: key, Version: binary.BigEndian.Uint64(v)})
					}
				}
				return len(chunk) < backfillChunk
			})
			if err = errors.Join(err, ferr); err != nil {
				return n, false, fmt.Errorf("backfill of sink %s: reading the view: %w", sink.Name(), err)
			}
			if len(chunk) > 0 && !write(chunk, nil) {
				return n, false, nil
			}
			n += len(chunk)
			if len(chunk) < backfillChunk {
				break
			}
			lower = append(last, 0)
		}
	}
	return n, write(nil, offsets), nil
}
