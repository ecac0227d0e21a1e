package httpapi

// The read endpoints a person browsing Strata needs (the console, and the
// CLI's aggregates, views, dlq and projection parked): what aggregate
// types and views there are, aggregate IDs by prefix, a view's rows, the
// dead letters and the parked events. Every list is a bounded page: none
// of them reads more than it answers, whatever the number of aggregates.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/store"
	"github.com/strata-es/strata/projections"
)

// AggregateType is one entry of GET /v1/aggregates.
type AggregateType struct {
	Name     string   `json:"name"`
	Commands []string `json:"commands"`
	Events   []string `json:"events"`
}

func (a *api) listAggregates(w http.ResponseWriter, r *http.Request) {
	out := []AggregateType{}
	for _, name := range sortedKeys(a.Codecs) {
		t := a.Codecs[name].Type
		out = append(out, AggregateType{Name: name, Commands: sorted(t.CommandTypes()), Events: sorted(t.EventTypes())})
	}
	writeJSON(w, http.StatusOK, map[string]any{"aggregates": out})
}

// AggregateSummary is one aggregate of GET /v1/aggregates/{aggregate}.
type AggregateSummary struct {
	ID        string    `json:"id"`
	Version   uint64    `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// AggregatesPage is the answer of GET /v1/aggregates/{aggregate}.
type AggregatesPage struct {
	Aggregate  string             `json:"aggregate"`
	Prefix     string             `json:"prefix"`
	Aggregates []AggregateSummary `json:"aggregates"`
	// Next is the cursor of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

// searchAggregates lists the IDs of an aggregate type that start with
// ?prefix=, in byte order, a page of ?limit= (default 20, at most 1000)
// after ?cursor=: a bounded Pebble prefix scan (store.AggregateIDs).
func (a *api) searchAggregates(w http.ResponseWriter, r *http.Request) {
	agg := r.PathValue("aggregate")
	c, ok := a.aggregateType(w, agg)
	if !ok {
		return
	}
	q := r.URL.Query()
	prefix := q.Get("prefix")
	if err := checkPrefix(prefix); err != nil {
		writeError(w, http.StatusBadRequest, "prefix: "+err.Error())
		return
	}
	limit, ok := intParam(w, q.Get("limit"), "limit", 20, 1, 1000)
	if !ok {
		return
	}
	after := ""
	if s := q.Get("cursor"); s != "" {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || aggregates.CheckID(string(b)) != nil || !strings.HasPrefix(string(b), prefix) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("cursor=%q is not one of this search's: use the next value of the previous page, with the same prefix", s))
			return
		}
		after = string(b)
	}
	if !a.waitPosition(w, r, waiter{"aggregate state", a.Applied}) {
		return
	}
	page := AggregatesPage{Aggregate: c.Type.Name(), Prefix: prefix, Aggregates: []AggregateSummary{}}
	err := a.DB.AggregateIDs(c.Type.Name(), prefix, after, func(id string, st *store.Aggregate) bool {
		if len(page.Aggregates) == limit {
			// One more than the page: there is a next one.
			page.Next = base64.RawURLEncoding.EncodeToString([]byte(page.Aggregates[limit-1].ID))
			return false
		}
		page.Aggregates = append(page.Aggregates, AggregateSummary{ID: id, Version: st.Version, UpdatedAt: time.UnixMilli(st.Timestamp).UTC()})
		return true
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// checkPrefix accepts what can start an aggregate ID (see
// aggregates.CheckID): any UTF-8 text without control characters, no
// longer than an ID.
func checkPrefix(p string) error {
	switch {
	case len(p) > aggregates.MaxIDLength:
		return fmt.Errorf("%d bytes, longer than an ID can be (%d)", len(p), aggregates.MaxIDLength)
	case !utf8.ValidString(p):
		return errors.New("not valid UTF-8")
	case strings.IndexFunc(p, unicode.IsControl) >= 0:
		return fmt.Errorf("%q contains a control character, which no ID has", p)
	}
	return nil
}

// intParam reads an integer query parameter between lo and hi, def when
// absent; it answers 400 itself when the value is bad.
func intParam(w http.ResponseWriter, s, name string, def, lo, hi int) (int, bool) {
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s=%q: want %d to %d", name, s, lo, hi))
		return 0, false
	}
	return n, true
}

// ViewInfo is one entry of GET /v1/views.
type ViewInfo struct {
	Name       string   `json:"name"`
	Aggregates []string `json:"aggregates"`
	Indexes    []string `json:"indexes"`
}

func (a *api) listViews(w http.ResponseWriter, r *http.Request) {
	out := []ViewInfo{}
	for _, name := range sortedViews(a.Views) {
		v := a.Views[name]
		out = append(out, ViewInfo{Name: name, Aggregates: nonNil(v.Aggregates), Indexes: nonNil(v.Indexes)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"views": out})
}

// DeadLetter is one record of GET /v1/dlq/{aggregate}. Key and value are
// text when they are UTF-8, else base64 (key_base64, value_base64); the
// value is cut to its first 4 KiB (value_bytes is its whole length).
type DeadLetter struct {
	Partition   int32        `json:"partition"`
	Offset      int64        `json:"offset"`
	Timestamp   time.Time    `json:"timestamp"`
	Reason      string       `json:"reason"`
	Source      string       `json:"source,omitempty"`
	Key         string       `json:"key,omitempty"`
	KeyBase64   string       `json:"key_base64,omitempty"`
	Value       string       `json:"value,omitempty"`
	ValueBase64 string       `json:"value_base64,omitempty"`
	ValueBytes  int          `json:"value_bytes"`
	Headers     []HeaderView `json:"headers"`
}

// HeaderView is a record header: text when UTF-8, else base64.
type HeaderView struct {
	Key         string `json:"key"`
	Value       string `json:"value,omitempty"`
	ValueBase64 string `json:"value_base64,omitempty"`
}

// DLQPage is the answer of GET /v1/dlq/{aggregate}.
type DLQPage struct {
	Aggregate string       `json:"aggregate"`
	Topic     string       `json:"topic"`
	Records   []DeadLetter `json:"records"`
	// Complete is false when some partitions could not be read to
	// their end in time: the records are the newest of what was read.
	Complete bool `json:"complete"`
}

// deadLetters reads the newest ?limit= (default 50, at most 500) records
// of an aggregate type's dead-letter topic from Kafka, newest first, with
// the reason the processor gave in their headers.
func (a *api) deadLetters(w http.ResponseWriter, r *http.Request) {
	agg := r.PathValue("aggregate")
	if _, ok := a.aggregateType(w, agg); !ok {
		return
	}
	limit, ok := intParam(w, r.URL.Query().Get("limit"), "limit", 50, 1, 500)
	if !ok {
		return
	}
	if a.DLQ == nil {
		writeError(w, http.StatusNotFound, "this node reads no dead-letter topics")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	recs, topic, complete, err := a.DLQ(ctx, agg, limit)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("reading the dead-letter topic of %s: %v", agg, err))
		return
	}
	page := DLQPage{Aggregate: agg, Topic: topic, Records: []DeadLetter{}, Complete: complete}
	for _, rec := range recs {
		d := DeadLetter{Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp.UTC(), ValueBytes: rec.ValueBytes, Headers: []HeaderView{}}
		d.Key, d.KeyBase64 = textOrBase64(rec.Key, false)
		d.Value, d.ValueBase64 = textOrBase64(rec.Value, len(rec.Value) < rec.ValueBytes)
		for _, h := range rec.Headers {
			hv := HeaderView{Key: h.Key}
			hv.Value, hv.ValueBase64 = textOrBase64(h.Value, false)
			d.Headers = append(d.Headers, hv)
			switch h.Key {
			case kafka.HeaderDLQReason:
				d.Reason = string(h.Value)
			case kafka.HeaderDLQSource:
				d.Source = string(h.Value)
			}
		}
		page.Records = append(page.Records, d)
	}
	writeJSON(w, http.StatusOK, page)
}

// textOrBase64 returns b as text when it is UTF-8, else as base64. A value
// that was cut may end inside a character: up to 3 bytes of it are dropped
// before deciding.
func textOrBase64(b []byte, cut bool) (text, b64 string) {
	if cut {
		for i := 0; i < 3 && len(b) > 0 && !utf8.Valid(b); i++ {
			if r, _ := utf8.DecodeLastRune(b); r != utf8.RuneError {
				break
			}
			b = b[:len(b)-1]
		}
	}
	if utf8.Valid(b) {
		return string(b), ""
	}
	return "", base64.StdEncoding.EncodeToString(b)
}

// ParkedEventView is one event of GET /v1/projections/{name}/parked: the
// record as it was on the events topic, decoded as the code reads it now
// (decode_error when it cannot be), and why its aggregate is parked.
type ParkedEventView struct {
	Aggregate     string          `json:"aggregate"`
	ID            string          `json:"id"`
	Reason        string          `json:"reason"`
	Since         time.Time       `json:"since"`
	Topic         string          `json:"topic"`
	Partition     int32           `json:"partition"`
	Offset        int64           `json:"offset"`
	Timestamp     time.Time       `json:"timestamp"`
	Version       uint64          `json:"version,omitempty"`
	Type          string          `json:"type,omitempty"`
	SchemaVersion int             `json:"schema_version,omitempty"`
	Data          json.RawMessage `json:"data,omitempty"`
	DecodeError   string          `json:"decode_error,omitempty"`
}

// ParkedPage is the answer of GET /v1/projections/{name}/parked.
type ParkedPage struct {
	Projection string            `json:"projection"`
	Events     []ParkedEventView `json:"events"`
	// Next is the cursor of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

// parkedEvents lists the events a projection set aside, by aggregate and
// offset, a page of ?limit= (default 50, at most 1000) after ?cursor=.
func (a *api) parkedEvents(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	v, ok := a.view(w, "projection", name)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit, ok := intParam(w, q.Get("limit"), "limit", 50, 1, 1000)
	if !ok {
		return
	}
	evs, next, err := projections.ParkedEvents(a.DB, v.Live.Current().Storage(), q.Get("cursor"), limit)
	if errors.Is(err, projections.ErrBadCursor) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	page := ParkedPage{Projection: name, Events: []ParkedEventView{}, Next: next}
	for _, e := range evs {
		base := ParkedEventView{Aggregate: e.Aggregate, ID: e.ID, Reason: e.Reason, Since: e.Since.UTC(),
			Topic: e.Topic, Partition: e.Partition, Offset: e.Offset, Timestamp: e.Timestamp.UTC()}
		base.Version, _ = strconv.ParseUint(string(e.Headers[kafka.HeaderVersion]), 10, 64)
		page.Events = append(page.Events, a.decodeParked(base, e.Value)...)
	}
	writeJSON(w, http.StatusOK, page)
}

// decodeParked decodes a parked record's value into its events (an
// upcaster may make several of one).
func (a *api) decodeParked(base ParkedEventView, value []byte) []ParkedEventView {
	c, ok := a.Codecs[base.Aggregate]
	if !ok {
		base.DecodeError = fmt.Sprintf("aggregate type %q is not registered on this node", base.Aggregate)
		return []ParkedEventView{base}
	}
	evs, ver, err := c.DecodeEvents(value)
	if err != nil {
		base.DecodeError = err.Error()
		return []ParkedEventView{base}
	}
	out := make([]ParkedEventView, 0, len(evs))
	for _, ev := range evs {
		pv := base
		pv.Type, pv.SchemaVersion = ev.EventType(), ver.N
		data, err := json.Marshal(ev)
		if err != nil {
			pv.DecodeError = err.Error()
		} else {
			pv.Data = data
		}
		out = append(out, pv)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return nonNil(out)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
