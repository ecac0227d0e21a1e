// Package tracing carries OpenTelemetry trace context through Strata: from
// an HTTP request or a command record's headers, to the command's events
// and result, to the projections that apply the events and the view
// records they publish. The context travels in the W3C Trace Context
// headers traceparent and tracestate, on HTTP and on Kafka records alike.
//
// Tracing is off unless a TracerProvider is given (New): then Strata
// starts no span of its own, but a trace context that arrives with a
// command is still passed on to its events, results and published view
// rows, so the systems around Strata can join their traces across it. The
// hot paths pay for tracing only for records that carry a trace context,
// or when tracing is on: Traced says which.
package tracing

import (
	"context"
	"net/http"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// The headers of the W3C Trace Context, on HTTP requests and Kafka records.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// Attributes of Strata's spans, beside the OpenTelemetry semantic
// conventions' messaging.* and http.* ones. None carries a command's or
// an event's data.
const (
	AggregateType  = attribute.Key("strata.aggregate.type")
	CommandType    = attribute.Key("strata.command.type")
	CommandID      = attribute.Key("strata.command.id")
	CommandStatus  = attribute.Key("strata.command.status") // accepted, rejected, conflict, invalid, forwarded
	Version        = attribute.Key("strata.aggregate.version")
	Events         = attribute.Key("strata.events") // how many events a command appended
	EventType      = attribute.Key("strata.event.type")
	View           = attribute.Key("strata.view")
	ForwardedTo    = attribute.Key("strata.forwarded_to.partition")
	scopeName      = "github.com/strata-es/strata"
	traceparentKey = "Traceparent" // canonical HTTP form: no allocation to look it up
)

// propagator is the W3C Trace Context, always: the global one of the
// OpenTelemetry API propagates nothing unless a program sets it.
var propagator = propagation.TraceContext{}

// Tracer starts Strata's spans. A nil *Tracer is tracing off: Start starts
// nothing and returns its parent, so an incoming trace context still flows
// through (see the package doc). Safe for concurrent use.
type Tracer struct {
	tracer trace.Tracer
}

// New returns a Tracer whose spans go to tp; nil (tracing off) when tp is
// nil or the API's no-op provider.
func New(tp trace.TracerProvider) *Tracer {
	if tp == nil {
		return nil
	}
	if _, ok := tp.(noop.TracerProvider); ok {
		return nil
	}
	return &Tracer{tracer: tp.Tracer(scopeName)}
}

// On reports whether spans are recorded.
func (t *Tracer) On() bool { return t != nil }

// Start starts a span, a child of the span context in ctx (a new root when
// there is none). With tracing off it returns ctx and the span in it,
// usually a non-recording one holding an incoming span context, which
// Headers then passes on as it came: ending it does nothing.
func (t *Tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if t == nil {
		return ctx, trace.SpanFromContext(ctx)
	}
	return t.tracer.Start(ctx, name, opts...)
}

// Traced reports whether a record needs tracing work: tracing is on, or
// the record carries a trace context to pass on. It allocates nothing.
func (t *Tracer) Traced(r *kgo.Record) bool { return t != nil || HasContext(r) }

// HasContext reports whether r has a traceparent header (valid or not).
func HasContext(r *kgo.Record) bool {
	for i := range r.Headers {
		if r.Headers[i].Key == HeaderTraceparent {
			return true
		}
	}
	return false
}

// IsHeader reports whether a header key is one that carries trace context.
func IsHeader(key string) bool { return key == HeaderTraceparent || key == HeaderTracestate }

// FromRecord returns ctx with the span context of r's headers, as a
// remote parent. A missing or malformed traceparent is ignored: ctx comes
// back as it was.
func FromRecord(ctx context.Context, r *kgo.Record) context.Context {
	return propagator.Extract(ctx, kotel.NewRecordCarrier(r))
}

// HasHTTPContext reports whether h has a traceparent header. It allocates
// nothing.
func HasHTTPContext(h http.Header) bool { return len(h[traceparentKey]) > 0 }

// FromHTTP returns ctx with the span context of an HTTP request's headers,
// as a remote parent; malformed or missing, it returns ctx.
func FromHTTP(ctx context.Context, h http.Header) context.Context {
	return propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// Headers returns the record headers that carry ctx's span context
// (traceparent, and tracestate when it has one); nil when ctx has none.
// Callers compute them once and add them to every record of a command.
func Headers(ctx context.Context) []kgo.RecordHeader {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	hs := make(headerList, 0, 2)
	propagator.Inject(ctx, &hs)
	return hs
}

// headerList is the carrier Headers injects into: new headers only, so
// appending to a slice of them is all it takes.
type headerList []kgo.RecordHeader

func (h *headerList) Get(string) string { return "" }
func (h *headerList) Keys() []string    { return nil }
func (h *headerList) Set(key, value string) {
	*h = append(*h, kgo.RecordHeader{Key: key, Value: []byte(value)})
}
