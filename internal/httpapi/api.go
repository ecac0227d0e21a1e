// Package httpapi serves Strata's HTTP JSON API under /v1.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/internal/codec"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/metrics"
	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/internal/processor"
	"github.com/strata-es/strata/internal/sinks/cache"
	"github.com/strata-es/strata/internal/sinks/search"
	"github.com/strata-es/strata/internal/store"
	"github.com/strata-es/strata/internal/tracing"
	"github.com/strata-es/strata/projections"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 1 << 20

// View is a view the API serves.
type View struct {
	Name string
	Live *projections.Live
	// Indexes are the names of its secondary indexes.
	Indexes []string
	// Aggregates are the aggregate types whose events it reads.
	Aggregates []string
	// Cache, when set, answers GET /v1/views/{view}/{key} first; a miss
	// is read from Search, else Pebble, and fills the cache with the row
	// and its RowVersion (a compare-and-set: a fill never replaces a
	// newer row the projection wrote). A cache that fails is skipped.
	Cache *cache.Sink
	// Search, when set, answers the index queries it serves (and a row
	// read the cache misses). A ?position= query refreshes the index
	// first, so it sees every write the view applied.
	Search *search.Sink
	// PebbleRow reads a row and its RowVersion from Pebble, to fill the
	// cache from. Default: the row, with version 0, which a fill may use
	// safely: the projection writes every row it changes to the cache
	// (created when absent) before committing it to Pebble, so a row read
	// from Pebble is never newer than what the cache got from the
	// projection, and any version the projection writes (1 and up)
	// replaces a fill of version 0.
	PebbleRow func(storage, key string) (row json.RawMessage, version uint64, found bool, err error)
}

// SourceHeader says which store answered a view read: cache, search or
// pebble.
const SourceHeader = "X-Strata-Source"

// waiter is what waitPosition waits on.
type waiter struct {
	name    string
	applied *position.Tracker
}

// Sender sends a command to its aggregate's processor and waits for the
// result: *processor.Sender. It checks the request first (the aggregate ID,
// the command ID, the command's type and data): errors wrap
// aggregates.ErrNotFound for an unknown aggregate type,
// aggregates.ErrInvalid for a bad command, processor.ErrTimeout when no
// result came in time. It must be safe for concurrent use.
type Sender interface {
	Send(ctx context.Context, agg, id string, req processor.Request) (*processor.Result, error)
}

// Config configures the API.
type Config struct {
	Sender Sender
	Codecs map[string]codec.Codec
	DB     *store.DB
	// Applied tracks what the local aggregate state has applied.
	Applied *position.Tracker
	Views   map[string]View
	Log     *slog.Logger
	// CommandTimeout bounds how long a POST waits for its result.
	// Default 10s.
	CommandTimeout time.Duration
	// ReadWait is how long a read with ?position= waits by default, and
	// ReadWaitMax the most a ?wait= may ask for. Defaults 5s and 30s.
	ReadWait, ReadWaitMax time.Duration
	// Ready reports whether the node is ready, and why not.
	Ready func() (bool, map[string]string)
	// Status returns the node's status for /v1/status.
	Status func() any
	// BaseContext is the node's lifetime, for work that outlives a
	// request (a rebuild).
	BaseContext func() context.Context
	// Tokens, when they hold any, are required as "Authorization: Bearer
	// TOKEN" on every route but /healthz and /readyz; a read-only token
	// may only GET. Default nil: no authentication, which is why the
	// node listens on 127.0.0.1 unless told otherwise.
	Tokens *Tokens
	// DLQ reads the newest n records of an aggregate type's dead-letter
	// topic from Kafka, newest first (kafka.Tail), and names the topic;
	// complete is false when some partitions could not be read to their
	// end before ctx ended. Nil: GET /v1/dlq answers 404.
	DLQ func(ctx context.Context, agg string, n int) (recs []kafka.TailRecord, topic string, complete bool, err error)
	// WriteTimeout bounds the writing of an answer once it starts, so a
	// client that reads slowly cannot hold a connection. Default 30s:
	// ample for the largest page (10,000 events) on a slow link.
	WriteTimeout time.Duration
	// Tracer starts a span for each POST of a command, a child of the
	// request's traceparent. Default nil: tracing off; a traceparent is
	// still passed on to the command record.
	Tracer *tracing.Tracer
	// Metrics counts every request (strata_http_requests_total and
	// strata_http_request_duration_seconds) and is served at GET /metrics
	// unless MetricsAccess is MetricsOff. Default nil: neither.
	Metrics *metrics.Metrics
	// MetricsAccess says who may read /metrics. Default MetricsToken.
	MetricsAccess MetricsAccess
}

// MetricsAccess says who may read /metrics.
type MetricsAccess string

// The values of MetricsAccess.
const (
	// MetricsToken: with tokens configured, /metrics requires one like
	// every other route; a read-only token suffices. The default: the
	// metrics name the aggregate types, views and routes a node serves.
	MetricsToken MetricsAccess = "token"
	// MetricsOpen: /metrics requires no token, for scrapers that cannot
	// send one; like /healthz and /readyz.
	MetricsOpen MetricsAccess = "open"
	// MetricsOff: no /metrics route.
	MetricsOff MetricsAccess = "off"
)

// ParseMetricsAccess reads a MetricsAccess; "" is the default.
func ParseMetricsAccess(s string) (MetricsAccess, error) {
	switch a := MetricsAccess(s); a {
	case "":
		return MetricsToken, nil
	case MetricsToken, MetricsOpen, MetricsOff:
		return a, nil
	}
	return "", fmt.Errorf("metrics access %q: want token (a token required when tokens are configured), open or off", s)
}

type api struct{ Config }

// Handler returns the API's handler.
func Handler(cfg Config) http.Handler {
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = 10 * time.Second
	}
	if cfg.ReadWait <= 0 {
		cfg.ReadWait = 5 * time.Second
	}
	if cfg.ReadWaitMax < cfg.ReadWait {
		cfg.ReadWaitMax = max(30*time.Second, cfg.ReadWait)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.MetricsAccess == "" {
		cfg.MetricsAccess = MetricsToken
	}
	a := &api{cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+commandRoute, a.postCommand)
	mux.HandleFunc("GET /v1/aggregates", a.listAggregates)
	mux.HandleFunc("GET /v1/aggregates/{aggregate}", a.searchAggregates)
	mux.HandleFunc("GET /v1/aggregates/{aggregate}/{id}", a.getAggregate)
	mux.HandleFunc("GET /v1/aggregates/{aggregate}/{id}/events", a.getEvents)
	mux.HandleFunc("GET /v1/views/{view}/{key}", a.getViewRow)
	mux.HandleFunc("GET /v1/views/{view}", a.queryView)
	mux.HandleFunc("GET /v1/views", a.listViews)
	mux.HandleFunc("GET /v1/dlq/{aggregate}", a.deadLetters)
	mux.HandleFunc("GET /v1/projections/{name}/parked", a.parkedEvents)
	mux.HandleFunc("POST /v1/projections/{name}/retry", func(w http.ResponseWriter, r *http.Request) {
		v, ok := a.view(w, "projection", r.PathValue("name"))
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
		defer cancel()
		n, err := v.Live.Current().Retry(ctx)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"unparked": n, "still_parked": v.Live.Status().Parked})
	})
	mux.HandleFunc("POST /v1/projections/{name}/rebuild", func(w http.ResponseWriter, r *http.Request) {
		v, ok := a.view(w, "projection", r.PathValue("name"))
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		if err := v.Live.Rebuild(a.BaseContext(), ctx); err != nil {
			writeError(w, http.StatusConflict, err.Error())
			return
		}
		writeJSON(w, http.StatusAccepted, v.Live.Status())
	})
	mux.HandleFunc("GET /v1/projections", func(w http.ResponseWriter, r *http.Request) {
		out := []projections.Status{}
		for _, name := range sortedViews(a.Views) {
			out = append(out, a.Views[name].Live.Status())
		}
		writeJSON(w, http.StatusOK, map[string]any{"projections": out})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	if cfg.Metrics != nil && cfg.MetricsAccess != MetricsOff {
		mux.Handle("GET /metrics", cfg.Metrics.Handler())
	}
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		if a.Status == nil {
			writeError(w, http.StatusNotFound, "no status")
			return
		}
		writeJSON(w, http.StatusOK, a.Status())
	})
	var h http.Handler = jsonErrors{mux}
	if cfg.Tokens.Len() > 0 {
		open := map[string]bool{"/healthz": true, "/readyz": true}
		if cfg.MetricsAccess == MetricsOpen {
			open["/metrics"] = true
		}
		h = authenticate{tokens: cfg.Tokens, open: open, next: h}
	}
	h = writeDeadline{d: cfg.WriteTimeout, next: h}
	if cfg.Metrics != nil {
		h = instrument{mux: mux, m: cfg.Metrics, log: cfg.Log, next: h}
	}
	return h
}

// instrument counts and times every request, by the route that matches it
// (also when authentication refuses it before the route runs), and logs
// each at debug level.
type instrument struct {
	mux  *http.ServeMux
	m    *metrics.Metrics
	log  *slog.Logger
	next http.Handler
}

func (h instrument) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	_, route := h.mux.Handler(r)
	sw := &statusWriter{ResponseWriter: w}
	h.next.ServeHTTP(sw, r)
	code := sw.code
	if code == 0 {
		code = http.StatusOK // nothing written: net/http answers 200
	}
	took := time.Since(start)
	h.m.HTTPRequest(route, r.Method, code, took)
	if h.log.Enabled(r.Context(), slog.LevelDebug) {
		h.log.Debug("http request", "method", r.Method, "path", r.URL.Path, "route", route, "code", code, "took", took)
	}
}

// statusWriter remembers the status code of an answer, for the metrics
// and the span of a command.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// jsonErrors answers requests that match no route in JSON like every other
// error, keeping the mux's choice of 404 or 405 (with its Allow header).
type jsonErrors struct{ mux *http.ServeMux }

func (j jsonErrors) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := j.mux.Handler(r); pattern != "" {
		j.mux.ServeHTTP(w, r)
		return
	}
	j.mux.ServeHTTP(&errorWriter{ResponseWriter: w, r: r}, r)
}

type errorWriter struct {
	http.ResponseWriter
	r       *http.Request
	swallow bool
}

func (e *errorWriter) WriteHeader(code int) {
	var msg string
	switch code {
	case http.StatusNotFound:
		msg = fmt.Sprintf("no route for %s %s: see the README for the /v1 API", e.r.Method, e.r.URL.Path)
	case http.StatusMethodNotAllowed:
		msg = fmt.Sprintf("method %s not allowed on %s (allowed: %s)", e.r.Method, e.r.URL.Path, e.Header().Get("Allow"))
	default:
		e.ResponseWriter.WriteHeader(code)
		return
	}
	e.swallow = true
	e.Header().Del("X-Content-Type-Options")
	writeError(e.ResponseWriter, code, msg)
}

func (e *errorWriter) Write(b []byte) (int, error) {
	if e.swallow {
		return len(b), nil
	}
	return e.ResponseWriter.Write(b)
}

// Error is the body of every error answer.
type Error struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, Error{Error: msg})
}

// commandRoute is the route commands are posted to.
const commandRoute = "/v1/commands/{aggregate}/{id}"

func (a *api) postCommand(w http.ResponseWriter, r *http.Request) {
	if a.Tracer.On() || tracing.HasHTTPContext(r.Header) {
		var end func()
		w, r, end = a.traceCommand(w, r)
		defer end()
	}
	agg, id := r.PathValue("aggregate"), r.PathValue("id")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", MaxBodyBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	req, err := decodeCommand(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
		span.SetAttributes(tracing.CommandType.String(req.Type))
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.CommandTimeout)
	defer cancel()
	res, err := a.Sender.Send(ctx, agg, id, req)
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() && res != nil {
		span.SetAttributes(tracing.CommandID.String(res.CommandID), tracing.CommandStatus.String(res.Status))
	}
	switch {
	case errors.Is(err, aggregates.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
		return
	case errors.Is(err, aggregates.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case errors.Is(err, processor.ErrTimeout):
		writeError(w, http.StatusGatewayTimeout, err.Error())
		return
	case err != nil:
		// The command ID is "" when the client gave none: the Sender
		// made one up, which the error names.
		a.Log.Warn("sending a command failed; answered 503", "aggregate", agg, "aggregate_id", id, "command_id", req.CommandID, "err", err)
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	switch res.Status {
	case processor.StatusAccepted:
		// Let a read of this node that follows see the command: wait,
		// briefly, for the local state (the owner's or the follower's)
		// to apply it.
		if pos, err := position.Parse(res.Position); err == nil {
			wctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			a.Applied.Wait(wctx, pos)
			cancel()
		}
		writeJSON(w, http.StatusOK, res)
	case processor.StatusRejected:
		writeJSON(w, http.StatusUnprocessableEntity, res)
	case processor.StatusConflict:
		writeJSON(w, http.StatusConflict, res)
	default:
		writeJSON(w, http.StatusBadRequest, res)
	}
}

// traceCommand starts the span of a POST of a command, a child of the
// request's traceparent (a malformed one is ignored), and returns the
// writer and request to serve it with and the function that ends it. With
// tracing off it starts nothing, and the request's context carries the
// incoming span context on to the command record.
func (a *api) traceCommand(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request, func()) {
	ctx, span := a.Tracer.Start(tracing.FromHTTP(r.Context(), r.Header), "POST "+commandRoute, trace.WithSpanKind(trace.SpanKindServer))
	r = r.WithContext(ctx)
	if !span.IsRecording() {
		return w, r, func() {}
	}
	span.SetAttributes(semconv.HTTPRequestMethodPost, semconv.HTTPRoute(commandRoute), tracing.AggregateType.String(r.PathValue("aggregate")))
	sw := &statusWriter{ResponseWriter: w}
	return sw, r, func() {
		span.SetAttributes(semconv.HTTPResponseStatusCode(sw.code))
		if sw.code >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.code))
		}
		span.End()
	}
}

// decodeCommand decodes the body of POST /v1/commands/{aggregate}/{id}:
// one JSON object {"type","data","expected_version"?,"command_id"?} in
// UTF-8, with no other field and nothing after it. The data is returned
// compacted, so that the command record it becomes holds no padding
// (a body of spaces within the size limit would otherwise make a record
// larger than Kafka takes). It checks the envelope only; the Sender checks
// the command.
func decodeCommand(body []byte) (processor.Request, error) {
	var req processor.Request
	if err := codec.StrictJSON(body, &req); err != nil {
		return req, fmt.Errorf(`body must be a JSON object {"type","data","expected_version"?,"command_id"?}: %w`, err)
	}
	if len(req.Data) > 0 {
		var buf bytes.Buffer
		// Cannot fail: StrictJSON checked the data is one JSON value.
		if err := json.Compact(&buf, req.Data); err != nil {
			return req, fmt.Errorf("data: %w", err)
		}
		req.Data = buf.Bytes()
	}
	return req, nil
}

// aggregateType returns the codec of aggregate type agg, or answers 404
// naming the types there are.
func (a *api) aggregateType(w http.ResponseWriter, agg string) (codec.Codec, bool) {
	c, ok := a.Codecs[agg]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown aggregate type %q (types: %s)", agg, strings.Join(sortedKeys(a.Codecs), ", ")))
	}
	return c, ok
}

// view returns view name, or answers 404 naming the views there are; kind
// is what the route calls it ("view" or "projection").
func (a *api) view(w http.ResponseWriter, kind, name string) (View, bool) {
	v, ok := a.Views[name]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown %s %q (%ss: %s)", kind, name, kind, strings.Join(sortedViews(a.Views), ", ")))
	}
	return v, ok
}

func (a *api) codec(w http.ResponseWriter, r *http.Request) (codec.Codec, string, bool) {
	agg, id := r.PathValue("aggregate"), r.PathValue("id")
	c, ok := a.aggregateType(w, agg)
	if !ok {
		return c, "", false
	}
	if err := aggregates.CheckID(id); err != nil {
		writeError(w, http.StatusBadRequest, "aggregate ID: "+err.Error())
		return c, "", false
	}
	return c, id, true
}

// AggregateView is the answer of GET /v1/aggregates/{aggregate}/{id}.
type AggregateView struct {
	Aggregate string    `json:"aggregate"`
	ID        string    `json:"id"`
	Version   uint64    `json:"version"`
	State     any       `json:"state"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (a *api) getAggregate(w http.ResponseWriter, r *http.Request) {
	c, id, ok := a.codec(w, r)
	if !ok || !a.waitPosition(w, r, waiter{"aggregate state", a.Applied}) {
		return
	}
	q := r.URL.Query()
	if q.Has("version") || q.Has("as_of") {
		a.timeTravel(w, r, c, id)
		return
	}
	rec, found, err := store.LoadAggregate(a.DB.Pebble(), c.Type.Name(), id)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s %q does not exist", c.Type.Name(), id))
		return
	}
	state, err := c.DecodeState(rec.State)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, AggregateView{Aggregate: c.Type.Name(), ID: id, Version: rec.Version, State: state, UpdatedAt: time.UnixMilli(rec.Timestamp).UTC()})
}

// timeTravel replays the event index up to ?version=N or ?as_of=RFC3339.
func (a *api) timeTravel(w http.ResponseWriter, r *http.Request, c codec.Codec, id string) {
	q := r.URL.Query()
	maxVersion := ^uint64(0)
	var asOf time.Time
	if s := q.Get("version"); q.Has("version") {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil || v == 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("version=%q: want a version number from 1", s))
			return
		}
		maxVersion = v
	}
	if s := q.Get("as_of"); q.Has("as_of") {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("as_of=%q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", s))
			return
		}
		asOf = t
	}
	agg := c.Type.Name()
	target := maxVersion
	if !asOf.IsZero() {
		// The version at that time: the last event at or before it.
		target = 0
		err := a.DB.Events(agg, id, 1, func(e *store.Event) bool {
			if time.UnixMilli(e.Timestamp).After(asOf) || e.Version > maxVersion {
				return false
			}
			target = e.Version
			return true
		})
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if target == 0 {
			writeError(w, http.StatusNotFound, fmt.Sprintf("%s %q did not exist at %s", agg, id, asOf.Format(time.RFC3339)))
			return
		}
	}
	// Start from the newest snapshot at or before the target, then replay
	// the events after it: at most SnapshotEvery-1 of them.
	state := c.Type.NewState()
	view := AggregateView{Aggregate: agg, ID: id}
	snapV, snap, ok, err := a.DB.LatestSnapshot(agg, id, target)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if ok {
		if state, err = c.DecodeState(snap); err != nil {
			writeError(w, http.StatusInternalServerError, fmt.Sprintf("snapshot %d of %s %s: %v", snapV, agg, id, err))
			return
		}
		view.Version = snapV
	}
	var derr error
	err = a.DB.Events(agg, id, snapV+1, func(e *store.Event) bool {
		if e.Version > target {
			return false
		}
		evs, _, err := c.DecodeEvents(e.Payload)
		if err != nil {
			derr = fmt.Errorf("event %d of %s %s: %w", e.Version, agg, id, err)
			return false
		}
		for _, ev := range evs {
			state = c.Type.Evolve(state, ev)
		}
		view.Version, view.UpdatedAt = e.Version, time.UnixMilli(e.Timestamp).UTC()
		return true
	})
	if err = errors.Join(err, derr); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if view.Version == 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s %q did not exist at that point", agg, id))
		return
	}
	if maxVersion != ^uint64(0) && view.Version < maxVersion {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s %q has no version %d (latest %d)", agg, id, maxVersion, view.Version))
		return
	}
	view.State = state
	writeJSON(w, http.StatusOK, view)
}

// EventView is one event of GET /v1/aggregates/{aggregate}/{id}/events.
type EventView struct {
	Version       uint64          `json:"version"`
	Type          string          `json:"type"`
	Timestamp     time.Time       `json:"timestamp"`
	Data          json.RawMessage `json:"data"`
	CommandID     string          `json:"command_id,omitempty"`
	SchemaVersion int             `json:"schema_version"`
	Partition     int32           `json:"partition"`
	Offset        int64           `json:"offset"`
}

// EventsPage is the answer of GET /v1/aggregates/{aggregate}/{id}/events.
type EventsPage struct {
	Aggregate string      `json:"aggregate"`
	ID        string      `json:"id"`
	Events    []EventView `json:"events"`
	// Next is the from= of the next page, 0 when this is the last.
	Next uint64 `json:"next,omitempty"`
}

func (a *api) getEvents(w http.ResponseWriter, r *http.Request) {
	c, id, ok := a.codec(w, r)
	if !ok || !a.waitPosition(w, r, waiter{"event index", a.Applied}) {
		return
	}
	q := r.URL.Query()
	from, limit := uint64(1), 1000
	if s := q.Get("from"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("from=%q: want a version number", s))
			return
		}
		from = max(v, 1)
	}
	if s := q.Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > 10000 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit=%q: want 1 to 10000", s))
			return
		}
		limit = v
	}
	page := EventsPage{Aggregate: c.Type.Name(), ID: id, Events: []EventView{}}
	var derr error
	err := a.DB.Events(c.Type.Name(), id, from, func(e *store.Event) bool {
		if len(page.Events) == limit {
			page.Next = e.Version
			return false
		}
		evs, ver, err := c.DecodeEvents(e.Payload)
		if err != nil {
			derr = fmt.Errorf("event %d of %s %s: %w", e.Version, c.Type.Name(), id, err)
			return false
		}
		// Shown as the code reads it now: resolved into the newest
		// schema, upcast where needed; schema_version says what it was
		// written with.
		for _, ev := range evs {
			data, err := json.Marshal(ev)
			if err != nil {
				derr = err
				return false
			}
			page.Events = append(page.Events, EventView{
				Version: e.Version, Type: ev.EventType(), Timestamp: time.UnixMilli(e.Timestamp).UTC(), Data: data,
				CommandID: e.CommandID, SchemaVersion: ver.N, Partition: e.Partition, Offset: e.Offset,
			})
		}
		return true
	})
	if err = errors.Join(err, derr); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if len(page.Events) == 0 && from == 1 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s %q does not exist", c.Type.Name(), id))
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (a *api) getViewRow(w http.ResponseWriter, r *http.Request) {
	name, key := r.PathValue("view"), r.PathValue("key")
	v, ok := a.view(w, "view", name)
	if !ok {
		return
	}
	if err := aggregates.CheckID(key); err != nil {
		writeError(w, http.StatusBadRequest, "row key: "+err.Error())
		return
	}
	cur := v.Live.Current()
	if !a.waitPosition(w, r, waiter{"view " + name, cur.Applied()}) {
		return
	}
	setLag(w, v)
	if v.Cache != nil {
		e, hit, err := v.Cache.Get(r.Context(), key)
		switch {
		case err != nil:
			a.Log.Warn("view cache read failed; reading past it", "view", name, "key", key, "err", err)
		case hit && e.Row == nil:
			w.Header().Set(SourceHeader, "cache")
			writeError(w, http.StatusNotFound, fmt.Sprintf("view %s has no row %q", name, key))
			return
		case hit:
			w.Header().Set(SourceHeader, "cache")
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(append(e.Row, '\n'))
			return
		}
	}
	row, version, found, source, err := a.readRow(r.Context(), v, cur.Storage(), key)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set(SourceHeader, source)
	if !found {
		writeError(w, http.StatusNotFound, fmt.Sprintf("view %s has no row %q", name, key))
		return
	}
	if v.Cache != nil {
		if _, err := v.Cache.Fill(r.Context(), key, version, row); err != nil {
			a.Log.Warn("view cache fill failed", "view", name, "key", key, "err", err)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(row, '\n'))
}

// readRow reads a row past the cache: from the search index when the view
// has one (its GET is realtime, and a failed one falls back), else from
// Pebble. It returns the row's RowVersion and where it came from.
func (a *api) readRow(ctx context.Context, v View, storage, key string) (json.RawMessage, uint64, bool, string, error) {
	if v.Search != nil {
		row, version, found, err := v.Search.Get(ctx, key)
		if err == nil {
			return row, version, found, "search", nil
		}
		a.Log.Warn("search index read failed; reading Pebble", "view", v.Name, "key", key, "err", err)
	}
	if v.PebbleRow != nil {
		row, version, found, err := v.PebbleRow(storage, key)
		return row, version, found, "pebble", err
	}
	row, found, err := projections.GetRow(a.DB, storage, key)
	return row, 0, found, "pebble", err
}

// setLag tells, without waiting, how far the view is behind.
func setLag(w http.ResponseWriter, v View) {
	w.Header().Set("Strata-View-Lag", strconv.FormatInt(v.Live.Status().Lag, 10))
}

func sortedViews(m map[string]View) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ViewPage is the answer of GET /v1/views/{view}.
type ViewPage struct {
	Rows []projections.Row `json:"rows"`
	// Next is the cursor of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

func (a *api) queryView(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("view")
	v, ok := a.view(w, "view", name)
	if !ok {
		return
	}
	q := r.URL.Query()
	query := projections.Query{Index: q.Get("index"), Eq: q.Get("eq"), Cursor: q.Get("cursor"), Limit: 100}
	if query.Index != "" && !slices.Contains(v.Indexes, query.Index) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("view %s has no index %q (indexes: %v)", name, query.Index, v.Indexes))
		return
	}
	if query.Index != "" && !q.Has("eq") {
		writeError(w, http.StatusBadRequest, "index= needs eq=VALUE")
		return
	}
	switch o := q.Get("order"); o {
	case "", "asc":
	case "desc":
		query.Desc = true
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("order=%q: want asc or desc", o))
		return
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit=%q: want 1 to 1000", s))
			return
		}
		query.Limit = n
	}
	cur := v.Live.Current()
	if !a.waitPosition(w, r, waiter{"view " + name, cur.Applied()}) {
		return
	}
	setLag(w, v)
	var rows []projections.Row
	var next string
	var err error
	if v.Search != nil && query.Index != "" && v.Search.Serves(query.Index) {
		w.Header().Set(SourceHeader, "search")
		rows, next, err = a.searchView(r, v, query)
	} else {
		w.Header().Set(SourceHeader, "pebble")
		rows, next, err = query.Run(a.DB, cur.Storage())
	}
	if errors.Is(err, search.ErrUnavailable) {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if errors.Is(err, projections.ErrBadCursor) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ViewPage{Rows: rows, Next: next})
}

// searchView runs an index query on the search index. A query that
// waited for a position refreshes the index first: the view applied the
// position, so the index has the documents (sinks are written before
// Pebble), and the refresh makes them visible. Other queries see writes
// within the index's refresh interval (1s by default), which keeps
// refreshes, costly under load, to the reads that ask for them.
func (a *api) searchView(r *http.Request, v View, q projections.Query) ([]projections.Row, string, error) {
	if r.URL.Query().Get("position") != "" {
		if err := v.Search.Refresh(r.Context()); err != nil {
			return nil, "", err
		}
	}
	return v.Search.Query(r.Context(), q)
}

// waitPosition waits, bounded, until the view applied ?position=TOKEN. It
// answers the request itself and returns false when it cannot.
func (a *api) waitPosition(w http.ResponseWriter, r *http.Request, v waiter) bool {
	tok := r.URL.Query().Get("position")
	if tok == "" {
		return true
	}
	pos, err := position.Parse(tok)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return false
	}
	wait := a.ReadWait
	if s := r.URL.Query().Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("wait=%q: want a duration such as 500ms or 2s", s))
			return false
		}
		wait = min(d, a.ReadWaitMax)
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	behind := v.applied.Wait(ctx, pos)
	if behind == nil {
		return true
	}
	var total int64
	for _, n := range behind {
		total += n
	}
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("%s has not applied that position after %s: %d offsets behind; retry", v.name, wait, total))
	return false
}

func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
	ok, why := true, map[string]string{}
	if a.Ready != nil {
		ok, why = a.Ready()
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ok, "checks": why})
}
