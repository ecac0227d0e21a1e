// Package store is Strata's local state on Pebble: aggregate state, the
// per-aggregate event index, command results for deduplication, and the
// checkpoints that say how much of each events partition the state reflects.
// Views keep their rows in the same database under their own prefix (see
// package projections).
//
// Every write goes through a Batch committed atomically, so the state and
// the checkpoint that describes it can never disagree after a crash: either
// both are in the database or neither is. Batches are committed without
// fsync: Kafka is the source of truth, and a batch lost in a machine crash
// is re-derived from the events topic from the (equally lost) checkpoint.
package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// DB is a Pebble database. It is safe for concurrent use.
type DB struct {
	db    *pebble.DB
	cache *pebble.Cache
}

// Options tune the database.
type Options struct {
	// CacheBytes is the block cache size. Default 64 MiB: Pebble's own
	// default of 8 MiB doubles the cost of a random read of aggregate
	// state (see shared/MEASURED.md).
	CacheBytes int64
	// InMemory keeps everything in memory (tests).
	InMemory bool
}

// Open opens or creates the database in dir.
func Open(dir string, o Options) (*DB, error) {
	if o.CacheBytes <= 0 {
		o.CacheBytes = 64 << 20
	}
	cache := pebble.NewCache(o.CacheBytes)
	opts := &pebble.Options{
		Cache:  cache,
		Logger: quietLogger{},
		// A catch-up or restore commits batches of tens of thousands of
		// keys; a batch larger than half the memtable becomes a
		// "flushable batch" that Pebble sorts on the spot, which doubled
		// restore times. 64 MiB keeps them ordinary.
		MemTableSize: 64 << 20,
	}
	// Bloom filters: most loads during a catch-up are of aggregates not
	// stored yet, and a filter answers those without reading blocks.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	if o.InMemory {
		opts.FS = vfs.NewMem()
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		cache.Unref()
		return nil, fmt.Errorf("open state store %s: %w (is another strata using this data directory?)", dir, err)
	}
	return &DB{db: db, cache: cache}, nil
}

// Close closes the database.
func (d *DB) Close() error {
	err := d.db.Close()
	d.cache.Unref()
	return err
}

// Pebble returns the underlying database for packages that keep their own
// keyspace in it (views).
func (d *DB) Pebble() *pebble.DB { return d.db }

// Get returns a copy of the value at key, or ok=false.
func (d *DB) Get(key []byte) (val []byte, ok bool, err error) {
	v, closer, err := d.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	val = bytes.Clone(v)
	return val, true, closer.Close()
}

// Scan calls fn for each key with the prefix, in key order, until fn
// returns false. Slices passed to fn are valid only during the call.
func (d *DB) Scan(prefix []byte, fn func(key, val []byte) bool) error {
	return d.ScanRange(prefix, PrefixEnd(prefix), fn)
}

// ScanRange is Scan over [lower, upper).
func (d *DB) ScanRange(lower, upper []byte, fn func(key, val []byte) bool) error {
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		if !fn(it.Key(), it.Value()) {
			break
		}
	}
	return errors.Join(it.Error(), it.Close())
}

// ScanReverse is Scan from the last key with the prefix backwards.
func (d *DB) ScanReverse(prefix []byte, fn func(key, val []byte) bool) error {
	return d.ScanRangeReverse(prefix, PrefixEnd(prefix), fn)
}

// ScanRangeReverse is ScanRange backwards.
func (d *DB) ScanRangeReverse(lower, upper []byte, fn func(key, val []byte) bool) error {
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	for it.Last(); it.Valid(); it.Prev() {
		if !fn(it.Key(), it.Value()) {
			break
		}
	}
	return errors.Join(it.Error(), it.Close())
}

// NewBatch returns an empty write-only batch: the cheap kind, for writers
// that never read through it.
func (d *DB) NewBatch() *pebble.Batch { return d.db.NewBatch() }

// NewIndexedBatch returns an empty indexed batch: reads through it see its
// own writes, at the cost of keeping a sorted index of them.
func (d *DB) NewIndexedBatch() *pebble.Batch { return d.db.NewIndexedBatch() }

// Commit applies b atomically, without fsync (see the package doc).
func (d *DB) Commit(b *pebble.Batch) error {
	defer b.Close()
	return b.Commit(pebble.NoSync)
}

// Flush makes everything committed so far durable.
func (d *DB) Flush() error { return d.db.Flush() }

// PrefixEnd returns the smallest key greater than every key with prefix p
// (nil: none), the upper bound of a prefix scan.
func PrefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// Key builds a key from a one-byte kind and parts separated by 0x00. Parts
// are IDs and names, which never contain 0x00 (aggregates.CheckID).
func Key(kind byte, parts ...string) []byte {
	n := 1
	for _, p := range parts {
		n += len(p) + 1
	}
	k := make([]byte, 0, n+8)
	k = append(k, kind)
	for _, p := range parts {
		k = append(k, 0)
		k = append(k, p...)
	}
	return k
}

// AppendUint64 appends v big-endian, so numeric order is key order.
func AppendUint64(k []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(k, v) }

type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	// Pebble reports background errors here; they also surface on the
	// next operation, which is where Strata handles them.
}
func (quietLogger) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
