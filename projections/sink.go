package projections

import (
	"context"
	"encoding/json"

	"github.com/hamba/avro/v2"
	"github.com/strata-es/strata/internal/position"
)

// A Sink keeps a copy of a view in a store outside Strata: a search index,
// a cache, database tables. Pebble stays the view's source of truth (the
// rows are folded there, exactly once); a sink receives the whole rows a
// batch of events changed, each with its RowVersion, before the batch is
// committed to Pebble. A sink that fails makes the projection retry the
// batch with backoff (and say so in its status and metrics): no event is
// skipped, and the view does not advance past what every sink has.
//
// Writes are replayed after a crash, a retry or a restart, and may come
// in different batches than the first time: a sink must make them
// idempotent and never let a row go backwards, by keeping a row only when
// its RowVersion is higher than the one it has (an index's external
// versioning, a compare-and-set, a conditional upsert).
type Sink interface {
	// Name names the sink in logs, status and metrics ("postgres",
	// "search", "cache").
	Name() string
	// Open prepares the store for the view (tables, index templates and
	// mappings, from the view's Avro schema) and returns the offsets the
	// sink has stored, nil when it keeps none or has none yet: the runner
	// backfills a sink behind the view from Pebble's rows. An error is
	// retried with backoff.
	Open(ctx context.Context, v SinkView) (map[position.TP]int64, error)
	// Write stores a batch: its changed rows, and the offsets after it
	// (every event before them is applied). A transactional sink stores
	// both atomically.
	Write(ctx context.Context, b SinkBatch) error
	// Close releases the sink's connections.
	Close() error
}

// SinkView describes the view a sink copies.
type SinkView struct {
	// Name is the view's name; Namespace Strata's topic namespace, for
	// naming what the sink creates (strata_orders, strata-orders).
	Name, Namespace string
	// Schema is the newest Avro schema of the view's rows
	// (schemas/views/<Name>.v<N>.avsc), or nil when it has none: a sink
	// that needs one refuses to open without it, saying so.
	Schema avro.Schema
	// Indexes are the view's secondary indexes.
	Indexes []Index
}

// SinkBatch is what a batch of events changed in a view.
type SinkBatch struct {
	// Rows are the changed rows, in key order, each once.
	Rows []SinkRow
	// Offsets are, per events partition the batch read, the next offset
	// to apply: the view has every event before it.
	Offsets map[position.TP]int64
	// Backfill is true for the batches that copy Pebble's rows into a
	// sink that was behind: chunks of rows with no Offsets, then one batch
	// with the view's Offsets and no rows, so a sink that stored them has
	// every row. A backfilled row replaces one of an equal version too
	// (never a higher one): after a rebuild with a changed Apply, the new
	// generation's rows have the versions of the old ones but may differ.
	// Rows the view deleted come as deletions (Row nil) when Pebble still
	// has their version; rows a sink has that the view never had are left.
	Backfill bool
}

// SinkRow is one changed row.
type SinkRow struct {
	Key string
	// Version is the row's RowVersion: how many events changed the row
	// (a delete counts too). It only grows, and a replay or a rebuild
	// from offset 0 gives every state of the row the same version again,
	// so a sink that keeps the highest version never goes backwards.
	Version uint64
	// Row is the row's JSON, as the HTTP view API serves it; nil when the
	// row was deleted.
	Row json.RawMessage
}
