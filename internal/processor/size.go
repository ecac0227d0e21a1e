package processor

import (
	"fmt"
	"strconv"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// MaxRecordBytes is the largest record (key, value and headers) the
// processor produces. A larger one would fail its transaction with
// MESSAGE_TOO_LARGE on every retry and stop the processor for every
// partition, so it is never produced: below kgo's default batch limit
// (1,000,012 bytes) and Kafka's default message.max.bytes (1,048,588), with
// room for the batch framing.
const MaxRecordBytes = 990_000

// dlqKeep is how much of an oversized value its dead-letter copy keeps.
const dlqKeep = 64 << 10

// recordBytes is a record's size as the broker counts it, near enough:
// key, value, headers and their per-field overhead.
func recordBytes(r *kgo.Record) int {
	n := 32 + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += 8 + len(h.Key) + len(h.Value)
	}
	return n
}

// fitDLQ shortens the value of a dead-letter record that would be too large
// to produce to its first dlqKeep bytes, and says so in a header with the
// original length; strata-dlq-source names the original, which the
// commands topic still holds.
func fitDLQ(d *kgo.Record) *kgo.Record {
	if recordBytes(d) <= MaxRecordBytes {
		return d
	}
	n := len(d.Value)
	d.Value = d.Value[:min(n, dlqKeep)]
	d.Headers = append(d.Headers, kgo.RecordHeader{Key: kafka.HeaderDLQTruncated, Value: strconv.AppendInt(nil, int64(n), 10)})
	for recordBytes(d) > MaxRecordBytes && len(d.Headers) > 0 {
		// Headers this large are part of the problem: keep the reason,
		// source and truncation headers, which come last.
		d.Headers = d.Headers[1:]
	}
	return d
}

// tooLarge is the reason a record of what cannot be produced.
func tooLarge(what string, r *kgo.Record) string {
	return fmt.Sprintf("%s would be a record of %d bytes, over the %d-byte limit", what, recordBytes(r), MaxRecordBytes)
}
