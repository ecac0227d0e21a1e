package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"
)

// Key kinds. One byte each, so that every kind is its own key range.
const (
	kindAggregate  = 'a'
	kindEvent      = 'e'
	kindResult     = 'r'
	kindCheckpoint = 'k'
	kindSnapshot   = 's'
	kindResultTime = 't'
	kindTopic      = 'T'
)

// Aggregate is the stored state of one aggregate.
type Aggregate struct {
	Version   uint64 // number of events applied; 0 means it does not exist
	Partition int32  // events partition
	Offset    int64  // events offset of the last event applied
	Timestamp int64  // unix milliseconds of the last event
	State     []byte // the state, Avro single-object encoding
}

// Event is one entry of an aggregate's event index: enough to serve its
// history and time travel without reading Kafka.
type Event struct {
	Version   uint64
	Partition int32
	Offset    int64
	Timestamp int64 // unix milliseconds
	Type      string
	CommandID string
	Payload   []byte // the event, Avro single-object encoding, as on Kafka
}

// ErrCorrupt is returned when a stored record does not decode.
var ErrCorrupt = errors.New("strata: corrupt record in state store")

// AggregateKey is the key of an aggregate's state.
func AggregateKey(aggType, id string) []byte { return Key(kindAggregate, aggType, id) }

// EventPrefix is the prefix of an aggregate's event index entries.
func EventPrefix(aggType, id string) []byte { return append(Key(kindEvent, aggType, id), 0) }

// EventKey is the key of one event index entry.
func EventKey(aggType, id string, version uint64) []byte {
	return AppendUint64(EventPrefix(aggType, id), version)
}

// SnapshotPrefix is the prefix of an aggregate's stored snapshots.
func SnapshotPrefix(aggType, id string) []byte { return append(Key(kindSnapshot, aggType, id), 0) }

// PutSnapshot stores the state of an aggregate at a version, for time
// travel and loading without replaying the whole history.
func PutSnapshot(b *pebble.Batch, aggType, id string, version uint64, state []byte) error {
	return b.Set(AppendUint64(SnapshotPrefix(aggType, id), version), state, nil)
}

// LatestSnapshot returns the newest stored snapshot of an aggregate at or
// before version atMost: its version and state; ok is false when none is.
func (d *DB) LatestSnapshot(aggType, id string, atMost uint64) (version uint64, state []byte, ok bool, err error) {
	prefix := SnapshotPrefix(aggType, id)
	upper := AppendUint64(prefix, atMost)
	upper = append(upper, 0) // include atMost itself
	err = d.ScanRangeReverse(prefix, upper, func(k, v []byte) bool {
		version = binary.BigEndian.Uint64(k[len(prefix):])
		state, ok = append([]byte(nil), v...), true
		return false
	})
	return version, state, ok, err
}

// ResultKey is the key of a command's stored result.
func ResultKey(aggType, commandID string) []byte { return Key(kindResult, aggType, commandID) }

// CheckpointKey is the key of an events partition's checkpoint.
func CheckpointKey(aggType string, partition int32) []byte {
	return binary.BigEndian.AppendUint32(append(Key(kindCheckpoint, aggType), 0), uint32(partition))
}

func get(r pebble.Reader, key []byte, decode func([]byte) error) (bool, error) {
	v, c, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer c.Close()
	if err := decode(v); err != nil {
		return false, fmt.Errorf("%w at key %q: %v", ErrCorrupt, key, err)
	}
	return true, nil
}

// LoadAggregate reads an aggregate's state from r (the DB's Pebble or a
// batch). ok is false when it has none.
func LoadAggregate(r pebble.Reader, aggType, id string) (a Aggregate, ok bool, err error) {
	ok, err = get(r, AggregateKey(aggType, id), a.decode)
	return a, ok, err
}

// PutAggregate writes an aggregate's state into b.
func PutAggregate(b *pebble.Batch, aggType, id string, a *Aggregate) error {
	return b.Set(AggregateKey(aggType, id), a.encode(), nil)
}

// PutEvent writes an event index entry into b.
func PutEvent(b *pebble.Batch, aggType, id string, e *Event) error {
	return b.Set(EventKey(aggType, id, e.Version), e.encode(), nil)
}

// LoadCheckpoint returns the next events offset to apply for a partition:
// 0 when nothing was applied.
func LoadCheckpoint(r pebble.Reader, aggType string, partition int32) (int64, error) {
	var off int64
	_, err := get(r, CheckpointKey(aggType, partition), func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("checkpoint is %d bytes", len(v))
		}
		off = int64(binary.BigEndian.Uint64(v))
		return nil
	})
	return off, err
}

// PutCheckpoint records that partition is applied up to, not including,
// next.
func PutCheckpoint(b *pebble.Batch, aggType string, partition int32, next int64) error {
	return b.Set(CheckpointKey(aggType, partition), binary.BigEndian.AppendUint64(nil, uint64(next)), nil)
}

// LoadResult returns a command's stored result.
func LoadResult(r pebble.Reader, aggType, commandID string) ([]byte, bool, error) {
	var out []byte
	ok, err := get(r, ResultKey(aggType, commandID), func(v []byte) error {
		out = append([]byte(nil), v...)
		return nil
	})
	return out, ok, err
}

// PutResult stores a command's result for deduplication, decided at ts
// (unix milliseconds), and indexes it by time for ExpireResults.
func PutResult(b *pebble.Batch, aggType, commandID string, ts int64, result []byte) error {
	if err := b.Set(ResultKey(aggType, commandID), result, nil); err != nil {
		return err
	}
	return b.Set(append(AppendUint64(resultTimePrefix(aggType), uint64(max(ts, 0))), commandID...), nil, nil)
}

func resultTimePrefix(aggType string) []byte { return append(Key(kindResultTime, aggType), 0) }

// ExpireResults deletes the results decided before before (unix
// milliseconds), at most limit of them, and returns how many it deleted.
func (d *DB) ExpireResults(aggType string, before int64, limit int) (int, error) {
	prefix := resultTimePrefix(aggType)
	upper := AppendUint64(prefix, uint64(max(before, 0)))
	b := d.db.NewBatch()
	n := 0
	err := d.ScanRange(prefix, upper, func(k, _ []byte) bool {
		id := string(k[len(prefix)+8:])
		if err := b.Delete(ResultKey(aggType, id), nil); err != nil {
			return false
		}
		if err := b.Delete(k, nil); err != nil {
			return false
		}
		n++
		return n < limit
	})
	if err != nil {
		b.Close()
		return 0, err
	}
	return n, d.Commit(b)
}

// Events calls fn for each event of an aggregate from version from on, in
// order, until fn returns false.
func (d *DB) Events(aggType, id string, from uint64, fn func(*Event) bool) error {
	prefix := EventPrefix(aggType, id)
	var derr error
	err := d.ScanRange(AppendUint64(prefix, from), PrefixEnd(prefix), func(k, v []byte) bool {
		var e Event
		if err := e.decode(v); err != nil {
			derr = fmt.Errorf("%w at key %q: %v", ErrCorrupt, k, err)
			return false
		}
		return fn(&e)
	})
	return errors.Join(err, derr)
}

// Binary encodings: a version byte, then fields as varints and
// length-prefixed bytes. Hand-written because they are on the hot path and
// never leave this process.

const recordFormat = 1

func (a *Aggregate) encode() []byte {
	b := make([]byte, 0, 32+len(a.State))
	b = append(b, recordFormat)
	b = binary.AppendUvarint(b, a.Version)
	b = binary.AppendVarint(b, int64(a.Partition))
	b = binary.AppendVarint(b, a.Offset)
	b = binary.AppendVarint(b, a.Timestamp)
	b = binary.AppendUvarint(b, uint64(len(a.State)))
	return append(b, a.State...)
}

func (a *Aggregate) decode(v []byte) error {
	d := decoder{b: v}
	if d.byte() != recordFormat {
		return fmt.Errorf("unknown record format")
	}
	a.Version = d.uvarint()
	a.Partition = d.int32()
	a.Offset = d.varint()
	a.Timestamp = d.varint()
	a.State = d.bytes()
	return d.done()
}

func (e *Event) encode() []byte {
	b := make([]byte, 0, 48+len(e.Type)+len(e.CommandID)+len(e.Payload))
	b = append(b, recordFormat)
	b = binary.AppendUvarint(b, e.Version)
	b = binary.AppendVarint(b, int64(e.Partition))
	b = binary.AppendVarint(b, e.Offset)
	b = binary.AppendVarint(b, e.Timestamp)
	b = binary.AppendUvarint(b, uint64(len(e.Type)))
	b = append(b, e.Type...)
	b = binary.AppendUvarint(b, uint64(len(e.CommandID)))
	b = append(b, e.CommandID...)
	b = binary.AppendUvarint(b, uint64(len(e.Payload)))
	return append(b, e.Payload...)
}

func (e *Event) decode(v []byte) error {
	d := decoder{b: v}
	if d.byte() != recordFormat {
		return fmt.Errorf("unknown record format")
	}
	e.Version = d.uvarint()
	e.Partition = d.int32()
	e.Offset = d.varint()
	e.Timestamp = d.varint()
	e.Type = string(d.bytes())
	e.CommandID = string(d.bytes())
	e.Payload = d.bytes()
	return d.done()
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated at %s", what)
	}
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("format")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int32() int32 {
	v := d.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail("int32")
	}
	return int32(v)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("bytes")
		return nil
	}
	v := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return v
}

func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	return d.err
}

// Topic is a Kafka topic the state store was built from: its name and
// the broker's ID of it, which changes when it is deleted and recreated.
type Topic struct {
	Name string
	ID   [16]byte
}

// TopicKey is the key of the topic an aggregate type's role (commands,
// events, results) is played by.
func TopicKey(aggType, role string) []byte { return Key(kindTopic, aggType, role) }

// LoadTopic returns the topic recorded for an aggregate type's role.
func LoadTopic(r pebble.Reader, aggType, role string) (Topic, bool, error) {
	var t Topic
	ok, err := get(r, TopicKey(aggType, role), func(v []byte) error {
		if len(v) < 16 {
			return fmt.Errorf("topic record of %d bytes", len(v))
		}
		copy(t.ID[:], v)
		t.Name = string(v[16:])
		return nil
	})
	return t, ok, err
}

// PutTopic records the topic an aggregate type's role is played by.
func PutTopic(b *pebble.Batch, aggType, role string, t Topic) error {
	return b.Set(TopicKey(aggType, role), append(t.ID[:], t.Name...), nil)
}
