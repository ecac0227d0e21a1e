package projections

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-es/strata/internal/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Parking. An event that Apply cannot apply (a bug in the projection, an
// event it did not expect) is retried with backoff; if it still fails, its
// aggregate is parked: the event and every later event of the same
// aggregate are set aside, in offset order, instead of applied, and every
// other aggregate keeps flowing. Retry (strata projection retry) replays
// them after a fix. Events that cannot even be decoded are not parked: they
// stop their partition (see Run).

const (
	kindParked      = 'q' // q view agg id offset → the record
	kindParkedOwner = 'Q' // Q view agg id → why
)

// applyRetries are the waits between attempts at an event before its
// aggregate is parked.
var applyRetries = []time.Duration{50 * time.Millisecond, 250 * time.Millisecond, time.Second}

// Parked is an aggregate whose events a projection set aside.
type Parked struct {
	Aggregate string    `json:"aggregate"`
	ID        string    `json:"id"`
	Events    int       `json:"events"`
	Reason    string    `json:"reason"`
	Since     time.Time `json:"since"`
}

type parkedOwner struct {
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

type parkedRecord struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Key       []byte            `json:"key"`
	Value     []byte            `json:"value"`
	Headers   map[string][]byte `json:"headers"`
	Timestamp time.Time         `json:"timestamp"`
}

func parkedOwnerKey(view, agg, id string) []byte { return store.Key(kindParkedOwner, view, agg, id) }

func parkedPrefix(view, agg, id string) []byte {
	return append(store.Key(kindParked, view, agg, id), 0)
}

func parkedKey(view, agg, id string, r *kgo.Record) []byte {
	k := parkedPrefix(view, agg, id)
	k = append(k, r.Topic...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint32(k, uint32(r.Partition))
	return binary.BigEndian.AppendUint64(k, uint64(r.Offset))
}

// park sets r aside in b.
func park(b *pebble.Batch, view, agg string, r *kgo.Record) error {
	pr := parkedRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Headers: map[string][]byte{}}
	for _, h := range r.Headers {
		pr.Headers[h.Key] = h.Value
	}
	v, err := json.Marshal(pr)
	if err != nil {
		return err
	}
	return b.Set(parkedKey(view, agg, string(r.Key), r), v, nil)
}

func (pr parkedRecord) record() *kgo.Record {
	r := &kgo.Record{Topic: pr.Topic, Partition: pr.Partition, Offset: pr.Offset, Key: pr.Key, Value: pr.Value, Timestamp: pr.Timestamp}
	for k, v := range pr.Headers {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: v})
	}
	return r
}

// loadParked returns the parked aggregates of view ("agg/id" → why).
func loadParked(db *store.DB, view string) (map[string]parkedOwner, error) {
	out := map[string]parkedOwner{}
	prefix := append(store.Key(kindParkedOwner, view), 0)
	var derr error
	err := db.Scan(prefix, func(k, v []byte) bool {
		var po parkedOwner
		if err := json.Unmarshal(v, &po); err != nil {
			derr = err
			return false
		}
		out[string(k[len(prefix):])] = po // "agg\x00id"
		return true
	})
	return out, errors.Join(err, derr)
}

func ownerID(agg, id string) string { return agg + "\x00" + id }

// parkedStatus lists the parked aggregates with their event counts.
func parkedStatus(db *store.DB, view string, owners map[string]parkedOwner) []Parked {
	var out []Parked
	for key, po := range owners {
		agg, id := splitOwner(key)
		n := 0
		_ = db.Scan(parkedPrefix(view, agg, id), func(_, _ []byte) bool { n++; return true })
		out = append(out, Parked{Aggregate: agg, ID: id, Events: n, Reason: po.Reason, Since: po.Since})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Aggregate+out[i].ID < out[j].Aggregate+out[j].ID })
	return out
}

func splitOwner(key string) (string, string) {
	for i := 0; i < len(key); i++ {
		if key[i] == 0 {
			return key[:i], key[i+1:]
		}
	}
	return key, ""
}

// retryParked replays the parked events of every parked aggregate, in
// offset order, and unparks the aggregates whose events all apply now. It
// returns how many aggregates it unparked.
func (r *Runner) retryParked() (int, error) {
	view := r.storage()
	unparked := 0
	r.mu.Lock()
	keys := make([]string, 0, len(r.parked))
	for key := range r.parked {
		keys = append(keys, key)
	}
	r.mu.Unlock()
	sort.Strings(keys)
	for _, key := range keys {
		agg, id := splitOwner(key)
		b := r.cfg.DB.NewIndexedBatch()
		var recs []*kgo.Record
		var parkedKeys [][]byte
		var derr error
		err := r.cfg.DB.Scan(parkedPrefix(view, agg, id), func(k, v []byte) bool {
			var pr parkedRecord
			if err := json.Unmarshal(v, &pr); err != nil {
				derr = err
				return false
			}
			recs = append(recs, pr.record())
			parkedKeys = append(parkedKeys, append([]byte(nil), k...))
			return true
		})
		if err = errors.Join(err, derr); err != nil {
			b.Close()
			return unparked, err
		}
		changed := newChanges()
		rows := newRowCache(r.cfg.Projection.Row)
		var failure error
		for _, rec := range recs {
			if err := r.apply(b, rows, agg, rec, changed, nil); err != nil {
				failure = fmt.Errorf("event at %s partition %d offset %d: %w", rec.Topic, rec.Partition, rec.Offset, err)
				break
			}
		}
		if failure != nil {
			b.Close()
			r.mu.Lock()
			po := r.parked[key]
			po.Reason = failure.Error()
			r.parked[key] = po
			r.mu.Unlock()
			if err := r.putParkedOwner(agg, id, po); err != nil {
				return unparked, err
			}
			continue
		}
		for _, k := range parkedKeys {
			if err := b.Delete(k, nil); err != nil {
				b.Close()
				return unparked, err
			}
		}
		if err := b.Delete(parkedOwnerKey(view, agg, id), nil); err != nil {
			b.Close()
			return unparked, err
		}
		if r.pub != nil {
			if err := r.pub.publish(r.ctx, r.cfg.DB, view, changed); err != nil {
				b.Close()
				return unparked, err
			}
		}
		// The sinks take the unparked rows before Pebble does, as in a
		// batch; the offsets do not move (the events were passed long ago).
		if ok, err := r.writeSinks(r.ctx, b, changed, nil); !ok {
			b.Close()
			return unparked, errors.Join(err, r.ctx.Err())
		}
		if err := r.cfg.DB.Commit(b); err != nil {
			return unparked, err
		}
		r.mu.Lock()
		delete(r.parked, key)
		r.mu.Unlock()
		unparked++
	}
	return unparked, nil
}

func (r *Runner) putParkedOwner(agg, id string, po parkedOwner) error {
	v, err := json.Marshal(po)
	if err != nil {
		return err
	}
	b := r.cfg.DB.NewBatch()
	if err := b.Set(parkedOwnerKey(r.storage(), agg, id), v, nil); err != nil {
		b.Close()
		return err
	}
	return r.cfg.DB.Commit(b)
}

// ParkedEvent is one event a projection set aside, as ParkedEvents lists
// it: the record as it was on the events topic, and why its aggregate is
// parked.
type ParkedEvent struct {
	Aggregate string
	ID        string
	Reason    string
	Since     time.Time
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	Headers   map[string][]byte
	Value     []byte
}

// ParkedEvents lists the parked events of the view kept in storage (see
// Runner.Storage), by aggregate type, ID and offset: at most limit of them
// after cursor ("" from the first), and the cursor of the next page (""
// on the last). A bounded scan, however many events are parked.
func ParkedEvents(db *store.DB, storage, cursor string, limit int) ([]ParkedEvent, string, error) {
	prefix := append(store.Key(kindParked, storage), 0)
	lower := prefix
	if cursor != "" {
		c, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(c) == 0 {
			return nil, "", fmt.Errorf("%w: use the next value of the previous page as is", ErrBadCursor)
		}
		lower = append(append(append([]byte(nil), prefix...), c...), 0)
	}
	out := []ParkedEvent{}
	owners := map[string]parkedOwner{}
	next := ""
	var last []byte
	var derr error
	err := db.ScanRange(lower, store.PrefixEnd(prefix), func(k, v []byte) bool {
		if len(out) == limit {
			// There is more: the next page starts after the last
			// event of this one.
			next = base64.RawURLEncoding.EncodeToString(last)
			return false
		}
		var pr parkedRecord
		if err := json.Unmarshal(v, &pr); err != nil {
			derr = fmt.Errorf("%w at key %q: %v", store.ErrCorrupt, k, err)
			return false
		}
		// The key is agg 0 id 0 topic 0 partition offset: the first
		// two parts name the owner.
		rest := k[len(prefix):]
		i := bytes.IndexByte(rest, 0)
		j := i + 1 + bytes.IndexByte(rest[i+1:], 0)
		if i < 0 || j <= i {
			derr = fmt.Errorf("%w: parked event key %q", store.ErrCorrupt, k)
			return false
		}
		agg, id := string(rest[:i]), string(rest[i+1:j])
		po, ok := owners[ownerID(agg, id)]
		if !ok {
			if _, err := getJSON(db, parkedOwnerKey(storage, agg, id), &po); err != nil {
				derr = err
				return false
			}
			owners[ownerID(agg, id)] = po
		}
		out = append(out, ParkedEvent{
			Aggregate: agg, ID: id, Reason: po.Reason, Since: po.Since,
			Topic: pr.Topic, Partition: pr.Partition, Offset: pr.Offset, Timestamp: pr.Timestamp, Headers: pr.Headers, Value: pr.Value,
		})
		last = append(last[:0], rest...)
		return true
	})
	if err = errors.Join(err, derr); err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// getJSON decodes the JSON value at key into v; ok is false when there is
// none.
func getJSON(db *store.DB, key []byte, v any) (ok bool, err error) {
	raw, ok, err := db.Get(key)
	if err != nil || !ok {
		return ok, err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("%w at key %q: %v", store.ErrCorrupt, key, err)
	}
	return true, nil
}
