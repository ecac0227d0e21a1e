package processor

import (
	"context"
	"strconv"
	"time"

	"github.com/strata-es/strata/internal/tracing"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// commandTrace is the span of one command of a batch, a child of the trace
// context its record carried (a new root when it carried none and tracing
// is on). Its context goes on in the headers of the command's events,
// result and forwarded record. A nil *commandTrace is a command that is
// not traced (no trace context and tracing off): every method does
// nothing, so the hot path allocates nothing for it.
type commandTrace struct {
	ctx  context.Context
	span trace.Span
	// headers carry the span's context (the incoming one, as it came,
	// when tracing is off); nil when there is none to carry.
	headers []kgo.RecordHeader
	// When the command's own handling began and ended; the batch's
	// stages after it are shared by every command of the batch.
	decideStart, decideEnd time.Time
}

// batchTrace ends the spans of a transaction's traced commands, with a
// child span for each stage of the batch each went through: decide (load
// the state, Decide, encode), kafka produce (until the batch's flush acked
// the events), kafka commit (results produced, transaction committed) and
// pebble write. The stages are timed once per batch, not per command, so
// tracing costs the loop nothing it did not already do.
type batchTrace struct {
	tracer                     *tracing.Tracer
	start                      time.Time
	cmds                       []*commandTrace
	flushed, committed, stored time.Time
}

// startCommand returns the trace of command record r, or nil when r is not
// traced.
func (p *Processor) startCommand(b *batchTrace, r *kgo.Record) *commandTrace {
	if !b.tracer.Traced(r) {
		return nil
	}
	ctx := tracing.FromRecord(context.Background(), r)
	span := trace.SpanFromContext(ctx) // off: the incoming context goes on as it came
	if b.tracer.On() {
		ctx, span = b.tracer.Start(ctx, "command "+p.agg,
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithTimestamp(b.start)) // the wait behind earlier commands of the batch counts
	}
	ct := &commandTrace{ctx: ctx, span: span, headers: tracing.Headers(ctx)}
	if span.IsRecording() {
		span.SetAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(r.Topic),
			semconv.MessagingDestinationPartitionID(strconv.Itoa(int(r.Partition))),
			semconv.MessagingKafkaOffset(int(r.Offset)),
			tracing.AggregateType.String(p.agg),
		)
		ct.decideStart = time.Now()
	}
	b.cmds = append(b.cmds, ct)
	return ct
}

// carry adds the command's trace headers to a record it produces.
func (ct *commandTrace) carry(r *kgo.Record) {
	if ct != nil {
		r.Headers = append(r.Headers, ct.headers...)
	}
}

// carries reports whether the command has trace headers that replace a
// forwarded record's own.
func (ct *commandTrace) carries() bool { return ct != nil && len(ct.headers) > 0 }

// commandType names the span after the command's type, once decoded.
func (ct *commandTrace) commandType(agg, typ string) {
	if ct != nil && ct.span.IsRecording() {
		ct.span.SetName("command " + agg + "." + typ)
		ct.span.SetAttributes(tracing.CommandType.String(typ))
	}
}

// forwarded records that the command went to another partition.
func (ct *commandTrace) forwarded(partition int32) {
	if ct != nil && ct.span.IsRecording() {
		ct.span.SetAttributes(tracing.CommandStatus.String("forwarded"), tracing.ForwardedTo.Int(int(partition)))
	}
}

// decided records the command's outcome, once handled.
func (ct *commandTrace) decided(res *Result) {
	if ct == nil || !ct.span.IsRecording() {
		return
	}
	ct.decideEnd = time.Now()
	if res == nil {
		return
	}
	ct.span.SetAttributes(
		tracing.CommandID.String(res.CommandID),
		tracing.CommandStatus.String(res.Status),
		tracing.Version.Int64(int64(res.Version)),
		tracing.Events.Int(len(res.Events)),
	)
	if res.Status == StatusInvalid {
		ct.span.SetStatus(codes.Error, res.Error)
	}
}

// end ends every command span of the batch, with its stages, once the
// batch is stored (err nil), aborted to be retried, or failed (err).
func (b *batchTrace) end(err error) {
	if len(b.cmds) == 0 {
		return
	}
	now := time.Now()
	for _, ct := range b.cmds {
		if !ct.span.IsRecording() {
			continue // nothing to end: tracing is off or the trace unsampled
		}
		b.stage(ct, "decide", ct.decideStart, ct.decideEnd)
		b.stage(ct, "kafka produce", ct.decideEnd, b.flushed)
		b.stage(ct, "kafka commit", b.flushed, b.committed)
		b.stage(ct, "pebble write", b.committed, b.stored)
		switch {
		case err != nil:
			ct.span.RecordError(err)
			ct.span.SetStatus(codes.Error, err.Error())
		case b.stored.IsZero():
			ct.span.SetStatus(codes.Error, "transaction aborted; the batch is retried")
		}
		ct.span.End(trace.WithTimestamp(now))
	}
}

// stage records a stage of ct that has happened, from and to known.
func (b *batchTrace) stage(ct *commandTrace, name string, from, to time.Time) {
	if from.IsZero() || to.IsZero() {
		return
	}
	_, s := b.tracer.Start(ct.ctx, name, trace.WithTimestamp(from))
	s.End(trace.WithTimestamp(to))
}
