package projections

import (
	"time"

	"github.com/strata-es/strata/aggregates"
)

// Event is one event as a projection sees it.
type Event struct {
	Aggregate   string // aggregate type
	AggregateID string
	Version     uint64
	Type        string
	Timestamp   time.Time
	CommandID   string
	Data        aggregates.Event // decoded, resolved to the newest schema

	Topic     string
	Partition int32
	Offset    int64
}

// Tx reads and writes a view's rows inside one batch. Rows are JSON-encoded
// Go values. A Tx is used by one goroutine.
type Tx interface {
	// Get decodes the row at key into row; ok is false when there is none.
	Get(key string, row any) (ok bool, err error)
	// Put writes the row at key.
	Put(key string, row any) error
	// Delete removes the row at key.
	Delete(key string) error
	// GetState and PutState read and write the projection's own state,
	// which is not part of the view (say, which customer an account
	// belongs to, for a view keyed by customer).
	GetState(key string, v any) (ok bool, err error)
	PutState(key string, v any) error
}

// Projection maintains one view from the events of some aggregate types.
type Projection struct {
	// Name is the view's name: /v1/views/{Name}.
	Name string
	// Aggregates are the aggregate types whose events it reads.
	Aggregates []string
	// Apply folds one event into the view. It must be deterministic: a
	// rebuild from offset 0 must give the same rows. Returning an error
	// stops the projection at that event (see Runner).
	Apply func(tx Tx, ev Event) error
	// Indexes are the view's secondary indexes, kept in the same batch as
	// the rows.
	Indexes []Index
	// Publish writes each changed row to the compacted topic
	// <ns>.view.<Name>, keyed by row key, in Avro with the newest
	// schemas/views/<Name>.v<N>.avsc, and a tombstone for a deleted row.
	// Row is the Go type of the rows (a zero value), which that schema
	// encodes.
	Publish bool
	Row     any
}
