package processor

import "encoding/json"

// Outcome of a command.
const (
	StatusAccepted = "accepted" // events were appended
	StatusRejected = "rejected" // a domain rule refused it; no events
	StatusConflict = "conflict" // expected_version did not match; no events
	StatusInvalid  = "invalid"  // it could not be decoded or validated; no events
)

// Result is the outcome of one command: the value of its record on
// <ns>.<aggregate>.results (JSON, keyed by command ID) and the body of the
// HTTP answer.
type Result struct {
	CommandID   string `json:"command_id"`
	Aggregate   string `json:"aggregate"`
	AggregateID string `json:"aggregate_id"`
	Status      string `json:"status"`
	// Version is the aggregate's version after the command; for a
	// conflict, its actual version.
	Version uint64        `json:"version"`
	Events  []ResultEvent `json:"events,omitempty"`
	// EventsOmitted: the events were too large to repeat in the result
	// record; GET /v1/aggregates/{aggregate}/{id}/events serves them.
	EventsOmitted bool `json:"events_omitted,omitempty"`
	// Position is the token of the events written, for read-your-writes.
	Position string `json:"position,omitempty"`
	Error    string `json:"error,omitempty"`
	// Timestamp is when the command was decided, unix milliseconds.
	Timestamp int64 `json:"timestamp"`
	// FirstVersion is the version of the command's first event, kept in
	// the state store when the result was rebuilt from the events topic
	// without its events' data: a resend fills Events from the event
	// index.
	FirstVersion uint64 `json:"first_version,omitempty"`

	// partition is the commands partition the command came from, whose
	// results partition its result goes to (see catchUpResults), and
	// commandOffset the offset of the record answered there.
	partition     int32
	commandOffset int64
	// A result rebuilt in catch-up has the partition and offset of its
	// command's last event, which commit makes Position of.
	rebuilt         bool
	eventsPartition int32
	lastOffset      int64
}

// ResultEvent is one event a command appended.
type ResultEvent struct {
	Type    string          `json:"type"`
	Version uint64          `json:"version"`
	Data    json.RawMessage `json:"data"`
}
