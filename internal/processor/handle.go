package processor

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/metrics"
	"github.com/strata-es/strata/internal/store"
	"github.com/strata-es/strata/internal/tracing"
	"github.com/twmb/franz-go/pkg/kgo"
)

// handle decides one command record. It produces the command's events (or
// forwards or dead-letters the record) through produce and returns the
// result to publish once the events have offsets; nil when the record was
// forwarded. An error means the batch cannot go on (Pebble failed). Each
// command answered is noted in w.done for the metrics. The records
// produced carry the command's trace context, tr (nil: none).
func (p *Processor) handle(w *work, r *kgo.Record, now time.Time, produce func(*kgo.Record), tr *commandTrace) (*Result, error) {
	source := fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)
	commandID, hasID := header(r, kafka.HeaderCommandID)
	if !hasID {
		// A stable ID for commands sent without one, so that even they
		// have exactly one result, keyed by something the sender can
		// compute: where the command was written.
		commandID = fmt.Sprintf("%s-%d-%d", r.Topic, r.Partition, r.Offset)
	}
	id := string(r.Key)
	// The command's type once decoded; before that (a resend, a record
	// that cannot be decoded), what its header says. A type the aggregate
	// does not declare counts as unknown.
	var typName string
	var typ *metrics.CommandType
	res := &Result{CommandID: commandID, Aggregate: p.agg, AggregateID: id, Timestamp: now.UnixMilli(), partition: r.Partition, commandOffset: r.Offset}
	done := func(res *Result, o metrics.Outcome) (*Result, error) {
		if typ == nil {
			typName, _ = header(r, kafka.HeaderCommandType)
			typ = p.met.CommandType(typName)
		}
		w.done = append(w.done, doneCommand{typ: typ, outcome: o, sent: r.Timestamp})
		if w.debug {
			p.cfg.Log.Debug("command decided", "aggregate", p.agg, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset,
				"command_id", commandID, "aggregate_id", id, "type", typName, "outcome", o.String(), "version", res.Version)
		}
		return res, nil
	}
	invalid := func(why metrics.DLQReason, reason string) (*Result, error) {
		p.cfg.Log.Warn("command record sent to the dead-letter topic", "aggregate", p.agg, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset,
			"command_id", commandID, "dlq_topic", p.dlq, "reason", reason)
		produce(fitDLQ(p.dlqRecord(r, source, reason)))
		w.dlq = append(w.dlq, why)
		res.Status, res.Error = StatusInvalid, reason
		w.results[commandID] = res
		return done(res, metrics.Invalid)
	}
	if err := aggregates.CheckID(commandID); err != nil {
		res.CommandID = fmt.Sprintf("%s-%d-%d", r.Topic, r.Partition, r.Offset)
		commandID = res.CommandID
		return invalid(metrics.DLQBadCommandID, "bad "+kafka.HeaderCommandID+" header: "+err.Error())
	}
	if err := aggregates.CheckID(id); err != nil {
		res.AggregateID = ""
		return invalid(metrics.DLQBadKey, "bad record key (the aggregate ID): "+err.Error())
	}

	// A command on the wrong partition would make two processes write one
	// aggregate's events; send it where its key belongs.
	if want := kafka.PartitionFor(r.Key, p.cfg.Partitions); want != r.Partition {
		fwd := &kgo.Record{Topic: r.Topic, Partition: want, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
		for _, h := range r.Headers {
			if h.Key != kafka.HeaderCommandID && h.Key != kafka.HeaderForwardedFrom && !(tr.carries() && tracing.IsHeader(h.Key)) {
				fwd.Headers = append(fwd.Headers, h)
			}
		}
		fwd.Headers = append(fwd.Headers,
			kgo.RecordHeader{Key: kafka.HeaderCommandID, Value: []byte(commandID)},
			kgo.RecordHeader{Key: kafka.HeaderForwardedFrom, Value: []byte(source)})
		tr.carry(fwd)
		tr.forwarded(want)
		if recordBytes(fwd) > MaxRecordBytes {
			return invalid(metrics.DLQTooLarge, tooLarge(fmt.Sprintf("forwarded to partition %d (its key's, by murmur2), the command", want), fwd)+
				"; produce commands with Kafka's default partitioner so they need no forwarding")
		}
		if w.debug {
			p.cfg.Log.Debug("command forwarded to its key's partition", "aggregate", p.agg, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset,
				"command_id", commandID, "aggregate_id", id, "to_partition", want)
		}
		produce(fwd)
		return nil, nil
	}

	if prev, err := w.result(commandID); err != nil {
		return nil, err
	} else if prev != nil {
		// Seen before: answer with the original outcome, write nothing.
		// A copy: prev may be the result of a record earlier in this
		// batch, still to be produced with its own offset.
		again := *prev
		if err := p.fillEvents(&again); err != nil {
			return nil, err
		}
		again.partition, again.commandOffset = r.Partition, r.Offset
		return done(&again, metrics.Duplicate)
	}

	cmd, err := p.decodeCommand(r)
	if err != nil {
		return invalid(metrics.DLQUndecodable, err.Error())
	}
	tr.commandType(p.agg, cmd.CommandType())
	typName = cmd.CommandType()
	typ = p.met.CommandType(typName)
	var expected *uint64
	if s, ok := header(r, kafka.HeaderExpectedVersion); ok {
		v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return invalid(metrics.DLQBadExpectedVersion, fmt.Sprintf("bad %s header %q: want a version number", kafka.HeaderExpectedVersion, s))
		}
		expected = &v
	}

	a, err := w.load(id)
	if err != nil {
		return nil, err
	}
	res.Version = a.version
	w.results[commandID] = res
	if expected != nil && *expected != a.version {
		res.Status = StatusConflict
		res.Error = (&aggregates.ConflictError{ID: id, Expected: *expected, Actual: a.version}).Error()
		return done(res, metrics.Conflict)
	}
	events, err := p.cfg.Codec.Type.Decide(a.state, cmd, now)
	switch {
	case errors.Is(err, aggregates.ErrRejected):
		res.Status, res.Error = StatusRejected, err.Error()
		return done(res, metrics.Rejected)
	case errors.Is(err, aggregates.ErrInvalid):
		res.Status, res.Error = StatusInvalid, err.Error()
		return done(res, metrics.Invalid)
	case err != nil:
		// Decide returned something that is neither: a domain bug, but
		// the command's fault as far as the sender can tell.
		p.cfg.Log.Warn("Decide returned an error that is neither a rejection nor invalid input (a bug of the domain); answering rejected",
			"aggregate", p.agg, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "command_id", commandID, "aggregate_id", id, "type", typName, "err", err)
		res.Status, res.Error = StatusRejected, err.Error()
		return done(res, metrics.Rejected)
	}
	prev := a.version
	outs := make([]*eventOut, len(events))
	for i, ev := range events {
		payload, err := p.cfg.Codec.EncodeEvent(ev)
		if err != nil {
			return nil, fmt.Errorf("processor %s: encode %s event %s: %w", p.agg, id, ev.EventType(), err)
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("processor %s: event %s as JSON: %w", p.agg, ev.EventType(), err)
		}
		out := &eventOut{entry: store.Event{
			Version:   a.version + 1 + uint64(i),
			Partition: r.Partition,
			Timestamp: now.UnixMilli(),
			Type:      ev.EventType(),
			CommandID: commandID,
			Payload:   payload,
		}, data: data}
		out.rec = p.eventRecord(r.Key, r.Partition, &out.entry)
		tr.carry(out.rec)
		if recordBytes(out.rec) > MaxRecordBytes {
			// Producing it would fail the transaction on every retry.
			return invalid(metrics.DLQTooLarge, tooLarge(fmt.Sprintf("its event %s", ev.EventType()), out.rec))
		}
		outs[i] = out
	}
	for i, ev := range events {
		out := outs[i]
		produce(out.rec)
		w.apply(a, []aggregates.Event{ev}, out)
		res.Events = append(res.Events, ResultEvent{Type: ev.EventType(), Version: out.entry.Version, Data: out.data})
	}
	p.snapshotDue(w, a, prev)
	res.Status, res.Version = StatusAccepted, a.version
	return done(res, metrics.Accepted)
}

// decodeCommand reads a command record's value: JSON when its content-type
// says so (the strata-command-type header names the type), Avro
// single-object encoding otherwise (the fingerprint names it).
func (p *Processor) decodeCommand(r *kgo.Record) (aggregates.Command, error) {
	ct, _ := header(r, kafka.HeaderContentType)
	typ, hasType := header(r, kafka.HeaderCommandType)
	isJSON := strings.HasPrefix(ct, kafka.ContentTypeJSON) ||
		ct == "" && len(r.Value) > 0 && r.Value[0] == '{'
	if isJSON {
		if !hasType {
			return nil, fmt.Errorf("JSON command without a %s header: set it to one of %v", kafka.HeaderCommandType, p.cfg.Codec.Type.CommandTypes())
		}
		return p.cfg.Codec.CommandJSON(typ, r.Value)
	}
	cmd, err := p.cfg.Codec.CommandAvro(r.Value)
	if err != nil {
		return nil, fmt.Errorf("%v (send JSON with header %s: %s, or Avro single-object encoding)", err, kafka.HeaderContentType, kafka.ContentTypeJSON)
	}
	if hasType && typ != cmd.CommandType() {
		return nil, fmt.Errorf("%s header says %q but the payload is a %s", kafka.HeaderCommandType, typ, cmd.CommandType())
	}
	return cmd, nil
}

func (p *Processor) dlqRecord(r *kgo.Record, source, reason string) *kgo.Record {
	d := &kgo.Record{Topic: p.dlq, Partition: r.Partition, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
	d.Headers = append(append(d.Headers, r.Headers...),
		kgo.RecordHeader{Key: kafka.HeaderDLQReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: kafka.HeaderDLQSource, Value: []byte(source)})
	return d
}

// resultRecord is the record of a result; whole says whether it holds all
// of it: a result too large for a record leaves out its events' data
// (events_omitted), which GET .../events serves.
func (p *Processor) resultRecord(res *Result) (r *kgo.Record, whole bool) {
	v, _ := json.Marshal(res) // a Result always marshals
	r = &kgo.Record{
		Topic:     p.results,
		Partition: res.partition,
		Key:       []byte(res.CommandID),
		Value:     v,
		Headers: []kgo.RecordHeader{
			{Key: kafka.HeaderContentType, Value: []byte(kafka.ContentTypeJSON)},
			{Key: kafka.HeaderCommandOffset, Value: strconv.AppendInt(nil, res.commandOffset, 10)},
		},
	}
	if recordBytes(r) <= MaxRecordBytes {
		return r, true
	}
	short := *res
	short.Events, short.EventsOmitted = nil, true
	r.Value, _ = json.Marshal(&short)
	return r, false
}

// fillEvents gives a result rebuilt from the events topic (FirstVersion
// set, no events' data) its events back, from the event index.
func (p *Processor) fillEvents(r *Result) error {
	if r.FirstVersion == 0 || len(r.Events) > 0 {
		return nil
	}
	var derr error
	err := p.cfg.DB.Events(p.agg, r.AggregateID, r.FirstVersion, func(e *store.Event) bool {
		if e.Version > r.Version {
			return false
		}
		evs, _, err := p.cfg.Codec.DecodeEvents(e.Payload)
		if err != nil {
			derr = err
			return false
		}
		for _, ev := range evs {
			data, err := json.Marshal(ev)
			if err != nil {
				derr = err
				return false
			}
			r.Events = append(r.Events, ResultEvent{Type: ev.EventType(), Version: e.Version, Data: data})
		}
		return true
	})
	if err = errors.Join(err, derr); err != nil {
		return fmt.Errorf("events of command %s: %w", r.CommandID, err)
	}
	r.FirstVersion = 0
	return nil
}
