package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TailOptions bound what Tail keeps of each record.
type TailOptions struct {
	// MaxValueBytes is how much of a record's value is kept; the rest is
	// cut (Tail says so in TailRecord.ValueBytes). Default 4 KiB: a
	// dead letter is read by a person, and a topic's last records may be
	// up to a megabyte each.
	MaxValueBytes int
}

// TailRecord is a record Tail read, its value possibly cut.
type TailRecord struct {
	*kgo.Record
	// ValueBytes is the length of the value as it is on the topic.
	ValueBytes int
}

// Tail reads the newest n committed records of topic, newest first (by
// timestamp, then partition and offset). It lists each partition's start
// and last stable offset, reads the last n offsets of each partition with
// a read_committed client of its own (made from opts, the node's
// connection options), and stops when every partition is read to that
// offset or ctx ends: complete is false in that case, and the records are
// those read so far. Control records (transaction markers) take offsets, so
// a partition written in transactions yields fewer than n records from its
// last n offsets.
func Tail(ctx context.Context, opts []kgo.Opt, topic string, n int, o TailOptions) (recs []TailRecord, complete bool, err error) {
	if n <= 0 {
		return nil, true, nil
	}
	if o.MaxValueBytes <= 0 {
		o.MaxValueBytes = 4 << 10
	}
	adm, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, false, fmt.Errorf("kafka client: %w", err)
	}
	defer adm.Close()
	ka := kadm.NewClient(adm)
	starts, err := ka.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, false, fmt.Errorf("start offsets of %s: %w", topic, err)
	}
	// The last stable offset: what a read_committed reader can reach.
	ends, err := ka.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, false, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	from := map[int32]kgo.Offset{}
	end := map[int32]int64{}
	ends.Each(func(e kadm.ListedOffset) {
		start := int64(0)
		if s, ok := starts.Lookup(topic, e.Partition); ok {
			start = s.Offset
		}
		if e.Offset > start {
			from[e.Partition] = kgo.NewOffset().At(max(start, e.Offset-int64(n)))
			end[e.Partition] = e.Offset
		}
	})
	if len(from) == 0 {
		return nil, true, nil
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Markers advance the offsets we watch to know that a
		// partition is read to its end.
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return nil, false, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	for len(end) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("%s partition %d: %w", t, p, err))
		})
		if ferr != nil {
			return nil, false, fmt.Errorf("reading %s: %w", topic, ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset+1 >= end[r.Partition] {
				delete(end, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			tr := TailRecord{Record: r, ValueBytes: len(r.Value)}
			if len(r.Value) > o.MaxValueBytes {
				// A copy, so the fetch's buffer can go.
				r.Value = bytes.Clone(r.Value[:o.MaxValueBytes])
			}
			recs = append(recs, tr)
		})
		if len(recs) > 2*n {
			recs = newest(recs, n)
		}
	}
	return newest(recs, n), len(end) == 0, nil
}

// newest sorts recs newest first and keeps n.
func newest(recs []TailRecord, n int) []TailRecord {
	sort.Slice(recs, func(i, j int) bool {
		a, b := recs[i], recs[j]
		if !a.Timestamp.Equal(b.Timestamp) {
			return a.Timestamp.After(b.Timestamp)
		}
		if a.Partition != b.Partition {
			return a.Partition < b.Partition
		}
		return a.Offset > b.Offset
	})
	return recs[:min(n, len(recs))]
}
