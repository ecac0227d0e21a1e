package projections

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/tracing"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// applyTrace is the span of one event's application to a view, a child of
// the span context in the event's headers (the command's span), from the
// start of Apply until the batch holding it is stored. Its headers carry
// it on to the rows the event changes on a published view's topic (the
// event's own context, as it came, when tracing is off). A nil
// *applyTrace is an event that is not traced; its methods do nothing.
type applyTrace struct {
	span    trace.Span
	headers []kgo.RecordHeader
}

// traced reports whether rec needs an applyTrace: tracing is on, or the
// view is published and rec has a trace context to carry on to it.
func (r *Runner) traced(rec *kgo.Record) bool {
	return r.cfg.Tracer.On() || r.pub != nil && tracing.HasContext(rec)
}

// startApply starts the span of applying rec.
func (r *Runner) startApply(rec *kgo.Record, agg string) *applyTrace {
	ctx := tracing.FromRecord(context.Background(), rec)
	span := trace.SpanFromContext(ctx) // off: the event's context goes on as it came
	if r.cfg.Tracer.On() {
		ctx, span = r.cfg.Tracer.Start(ctx, "apply "+r.cfg.Projection.Name, trace.WithSpanKind(trace.SpanKindConsumer))
	}
	if span.IsRecording() {
		span.SetAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(rec.Topic),
			semconv.MessagingDestinationPartitionID(strconv.Itoa(int(rec.Partition))),
			semconv.MessagingKafkaOffset(int(rec.Offset)),
			tracing.View.String(r.cfg.Projection.Name),
			tracing.AggregateType.String(agg),
		)
		for _, h := range rec.Headers {
			switch h.Key {
			case kafka.HeaderEventType:
				span.SetAttributes(tracing.EventType.String(string(h.Value)))
			case kafka.HeaderCommandID:
				span.SetAttributes(tracing.CommandID.String(string(h.Value)))
			}
		}
	}
	return &applyTrace{span: span, headers: tracing.Headers(ctx)}
}

// carried returns the headers the rows rec changes carry on.
func (a *applyTrace) carried() []kgo.RecordHeader {
	if a == nil {
		return nil
	}
	return a.headers
}

// fail marks the span failed: the event was parked, or stopped its
// partition.
func (a *applyTrace) fail(why string) {
	if a != nil {
		a.span.SetStatus(codes.Error, why)
	}
}

// endApplies ends the spans of a batch; err says why it was not stored.
func endApplies(as []*applyTrace, err error) {
	for _, a := range as {
		if err != nil {
			a.span.SetStatus(codes.Error, err.Error())
		}
		a.span.End()
	}
}

// changes are the rows a batch changed (nil: deleted), for publishing,
// with the trace headers of the event that changed each one last.
type changes struct {
	rows  map[string]json.RawMessage
	trace map[string][]kgo.RecordHeader // nil until a traced event changes a row
}

func newChanges() *changes { return &changes{rows: map[string]json.RawMessage{}} }

func (c *changes) set(key string, v json.RawMessage, headers []kgo.RecordHeader) {
	c.rows[key] = v
	switch {
	case headers != nil:
		if c.trace == nil {
			c.trace = map[string][]kgo.RecordHeader{}
		}
		c.trace[key] = headers
	case c.trace != nil:
		delete(c.trace, key)
	}
}
