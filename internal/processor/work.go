package processor

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/metrics"
	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/internal/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

// work is what one transaction (or one catch-up step) does to local state:
// the aggregates it touched, the events it appended, the results it
// decided. It is applied to Pebble in one batch, after Kafka has committed
// it, by commit.
type work struct {
	p           *Processor
	aggs        map[string]*aggState
	events      []*eventOut
	results     map[string]*Result // by command ID
	encoded     map[string][]byte  // results already marshaled, by command ID
	checkpoints map[int32]int64    // events partition -> next offset
	resultsNext map[int32]int64    // results partition -> next offset, all stored
	// commandsNext: commands partition -> the offset after the last
	// command record of the batch (see skipDecided)
	commandsNext map[int32]int64
	snapshots    map[string]*aggState // aggregates whose snapshot is due

	// What a transaction's batch answered and dead-lettered, counted in
	// the metrics once it commits; debug logs each command decided.
	done  []doneCommand
	dlq   []metrics.DLQReason
	debug bool
	// redelivered: command records of the batch skipped as decided
	// already (skipDecided)
	redelivered int

	// ownGen is the processor's ownGen when the work began: when the
	// assignment changed since, the follower may have written the same
	// aggregates meanwhile, and commit checks what Pebble holds.
	ownGen uint64
}

// doneCommand is a command a batch answered.
type doneCommand struct {
	typ     *metrics.CommandType
	outcome metrics.Outcome
	sent    time.Time // its record's timestamp
}

type aggState struct {
	id        string
	version   uint64
	state     any
	partition int32
	offset    int64
	timestamp int64
	dirty     bool
}

type eventOut struct {
	agg   *aggState
	entry store.Event
	rec   *kgo.Record // nil in catch-up, where the offset is known already
	data  json.RawMessage
	// indexOnly: an event a restored snapshot already covers; it goes to
	// the event index and changes no state.
	indexOnly bool
}

func (p *Processor) newWork() *work {
	return &work{
		p:            p,
		aggs:         map[string]*aggState{},
		results:      map[string]*Result{},
		encoded:      map[string][]byte{},
		checkpoints:  map[int32]int64{},
		resultsNext:  map[int32]int64{},
		snapshots:    map[string]*aggState{},
		commandsNext: map[int32]int64{},
		ownGen:       p.ownGen.Load(),
	}
}

// load returns an aggregate's state as this work sees it: its own changes
// first, then Pebble, then the initial state.
func (w *work) load(id string) (*aggState, error) {
	if a, ok := w.aggs[id]; ok {
		return a, nil
	}
	rec, ok, gen := w.p.cache.get(id)
	if !ok && w.p.exists.mayHave(id) {
		var err error
		rec, ok, err = store.LoadAggregate(w.p.cfg.DB.Pebble(), w.p.agg, id)
		if err != nil {
			return nil, err
		}
		if ok {
			w.p.cache.put(gen, id, rec)
		}
	}
	var err error
	a := &aggState{id: id}
	if ok {
		a.version, a.partition, a.offset, a.timestamp = rec.Version, rec.Partition, rec.Offset, rec.Timestamp
		a.state, err = w.p.cfg.Codec.DecodeState(rec.State)
	} else {
		a.state = w.p.cfg.Codec.Type.NewState()
	}
	if err != nil {
		return nil, fmt.Errorf("load %s %s: %w", w.p.agg, id, err)
	}
	w.aggs[id] = a
	return a, nil
}

// result returns the stored result of a command ID, from this work or
// Pebble.
func (w *work) result(commandID string) (*Result, error) {
	if r, ok := w.results[commandID]; ok {
		return r, nil
	}
	if !w.p.seen.mayHave(commandID) {
		return nil, nil
	}
	b, ok, err := store.LoadResult(w.p.cfg.DB.Pebble(), w.p.agg, commandID)
	if err != nil || !ok {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: result of command %s: %v", store.ErrCorrupt, commandID, err)
	}
	return &r, nil
}

// apply evolves a with the events of one stored record (one, unless an
// upcaster split or dropped it) and records it for the event index.
func (w *work) apply(a *aggState, evs []aggregates.Event, out *eventOut) {
	for _, ev := range evs {
		a.state = w.p.cfg.Codec.Type.Evolve(a.state, ev)
	}
	a.version = out.entry.Version
	a.partition, a.timestamp, a.dirty = out.entry.Partition, out.entry.Timestamp, true
	out.agg = a
	w.events = append(w.events, out)
}

// commit writes the work to Pebble in one batch and advances the applied
// positions. It runs only after Kafka committed the same work.
func (w *work) commit() error {
	p := w.p
	b := p.cfg.DB.NewBatch()
	for _, e := range w.events {
		if e.rec != nil {
			e.entry.Offset = e.rec.Offset
		}
		if !e.indexOnly {
			e.agg.offset = e.entry.Offset
		}
		if next := e.entry.Offset + 1; next > w.checkpoints[e.entry.Partition] {
			w.checkpoints[e.entry.Partition] = next
		}
		if err := store.PutEvent(b, p.agg, e.agg.id, &e.entry); err != nil {
			b.Close()
			return err
		}
	}
	type idRec struct {
		id  string
		rec store.Aggregate
	}
	written := make([]idRec, 0, len(w.aggs))
	// The caller holds stateMu, so nothing else writes meanwhile. When the
	// assignment changed since the work began (a partition was taken away
	// while its transaction or catch-up ran), the follower may have
	// applied newer events of the same aggregates: an aggregate is never
	// moved back to an older version, nor a checkpoint to an earlier
	// offset.
	careful := w.ownGen != p.ownGen.Load()
	for _, a := range w.aggs {
		if !a.dirty {
			continue
		}
		if careful {
			stored, ok, err := store.LoadAggregate(p.cfg.DB.Pebble(), p.agg, a.id)
			if err != nil {
				b.Close()
				return err
			}
			if ok && stored.Version >= a.version {
				continue
			}
		}
		st, err := p.cfg.Codec.EncodeState(a.state)
		if err != nil {
			b.Close()
			return fmt.Errorf("encode state of %s %s: %w", p.agg, a.id, err)
		}
		rec := store.Aggregate{Version: a.version, Partition: a.partition, Offset: a.offset, Timestamp: a.timestamp, State: st}
		if err := store.PutAggregate(b, p.agg, a.id, &rec); err != nil {
			b.Close()
			return err
		}
		written = append(written, idRec{a.id, rec})
		if w.snapshots[a.id] == a {
			if err := store.PutSnapshot(b, p.agg, a.id, a.version, st); err != nil {
				b.Close()
				return err
			}
		}
	}
	for id, r := range w.results {
		if r.rebuilt {
			r.Position = position.Position{p.tp(r.eventsPartition): r.lastOffset}.Token()
		}
		v, ok := w.encoded[id]
		if !ok {
			var err error
			if v, err = json.Marshal(r); err != nil {
				b.Close()
				return err
			}
		}
		if err := store.PutResult(b, p.agg, id, r.Timestamp, v); err != nil {
			b.Close()
			return err
		}
	}
	for part, next := range w.checkpoints {
		if careful {
			if stored, err := store.LoadCheckpoint(p.cfg.DB.Pebble(), p.agg, part); err != nil {
				b.Close()
				return err
			} else if stored >= next {
				continue
			}
		}
		if err := store.PutCheckpoint(b, p.agg, part, next); err != nil {
			b.Close()
			return err
		}
	}
	for part, next := range w.resultsNext {
		if err := store.PutCheckpoint(b, p.resultsCheckpoint(), part, next); err != nil {
			b.Close()
			return err
		}
	}
	if err := p.advanceDecided(b, w.commandsNext); err != nil {
		b.Close()
		return err
	}
	if err := p.cfg.DB.Commit(b); err != nil {
		return fmt.Errorf("write state of %s to Pebble: %w", p.agg, err)
	}
	ids := make([]string, 0, max(len(written), len(w.results)))
	for _, wr := range written {
		p.cache.committed(wr.id, wr.rec)
		ids = append(ids, wr.id)
	}
	p.exists.committed(ids)
	ids = ids[:0]
	for id := range w.results {
		ids = append(ids, id)
	}
	p.seen.committed(ids)
	for part, next := range w.checkpoints {
		p.cfg.Applied.Advance(position.TP{Topic: p.events, Partition: part}, next)
	}
	return nil
}

// snapshotDue marks a's snapshot due when its version crossed a multiple
// of SnapshotEvery since prev.
func (p *Processor) snapshotDue(w *work, a *aggState, prev uint64) {
	if n := uint64(p.cfg.SnapshotEvery); n > 0 && a.version/n > prev/n {
		w.snapshots[a.id] = a
	}
}

// snapshotRecord builds the snapshot record of a: its state in the state
// schema, with the version and the events offset it reflects in headers.
func (p *Processor) snapshotRecord(a *aggState, offset int64, now time.Time) (*kgo.Record, error) {
	st, err := p.cfg.Codec.EncodeState(a.state)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot of %s %s: %w", p.agg, a.id, err)
	}
	return &kgo.Record{
		Topic:     p.snapshots,
		Partition: a.partition,
		Key:       []byte(a.id),
		Value:     st,
		Timestamp: now,
		Headers: []kgo.RecordHeader{
			{Key: kafka.HeaderVersion, Value: strconv.AppendUint(nil, a.version, 10)},
			{Key: kafka.HeaderEventsOffset, Value: strconv.AppendInt(nil, offset, 10)},
			{Key: kafka.HeaderContentType, Value: []byte(kafka.ContentTypeAvro)},
		},
	}, nil
}

// eventRecord builds the Kafka record of an event.
func (p *Processor) eventRecord(key []byte, partition int32, e *store.Event) *kgo.Record {
	return &kgo.Record{
		Topic:     p.events,
		Partition: partition,
		Key:       key,
		Value:     e.Payload,
		Timestamp: msTime(e.Timestamp),
		Headers: []kgo.RecordHeader{
			{Key: kafka.HeaderEventType, Value: []byte(e.Type)},
			{Key: kafka.HeaderVersion, Value: strconv.AppendUint(nil, e.Version, 10)},
			{Key: kafka.HeaderCommandID, Value: []byte(e.CommandID)},
			{Key: kafka.HeaderContentType, Value: []byte(kafka.ContentTypeAvro)},
		},
	}
}

// header returns the value of the first header named key.
func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}
