package search

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/projections"
)

// maxBulkBytes bounds one _bulk request: well under the default
// http.max_content_length (100 MB) and the size above which a bulk stops
// getting faster.
const maxBulkBytes = 5 << 20

// Sink keeps one view in its index <namespace>-<view>. It is safe for
// concurrent use (the projection writes while HTTP requests read).
type Sink struct {
	c       *Client
	index   string // <namespace>-<view>
	offsets string // <namespace>-strata-offsets
	view    string
	// mappings are the index's, from the view's schema.
	mappings map[string]any
	// indexes are the view's indexes a query can be served for: those
	// with Field and SortField set, mapped and sortable.
	indexes map[string]projections.Index
}

// New returns the sink of view v writing through c (several sinks may
// share c). It checks, without connecting, that the view has a schema the
// index can be mapped from and that its declared indexes (Field and
// SortField) are on fields a term query and a sort can use.
func New(c *Client, v projections.SinkView) (*Sink, error) {
	if v.Schema == nil {
		return nil, fmt.Errorf("search: view %s has no Avro schema (schemas/views/%s.v1.avsc): the index mapping is made from it", v.Name, v.Name)
	}
	m, err := mapping(v.Schema)
	if err != nil {
		return nil, fmt.Errorf("search: view %s: %w", v.Name, err)
	}
	s := &Sink{
		c: c, view: v.Name, mappings: m, indexes: map[string]projections.Index{},
		index:   strings.ToLower(v.Namespace + "-" + v.Name),
		offsets: strings.ToLower(v.Namespace + "-strata-offsets"),
	}
	props := m["properties"].(map[string]any)
	for _, ix := range v.Indexes {
		if ix.Field == "" || ix.SortField == "" {
			continue
		}
		f, _ := props[ix.Field].(map[string]any)
		if f == nil || f["type"] != "keyword" {
			return nil, fmt.Errorf("search: view %s: index %s is on field %q, which the schema does not declare as a string", v.Name, ix.Name, ix.Field)
		}
		if f, _ := props[ix.SortField].(map[string]any); f == nil || !sortable(f) {
			return nil, fmt.Errorf("search: view %s: index %s sorts by %q, which the schema does not declare as a string, number, boolean or time", v.Name, ix.Name, ix.SortField)
		}
		s.indexes[ix.Name] = ix
	}
	return s, nil
}

var _ projections.Sink = (*Sink)(nil)

// Name is "search".
func (s *Sink) Name() string { return "search" }

// Index is the name of the view's index.
func (s *Sink) Index() string { return s.index }

// Open creates the view's index with its mappings (or adds new fields'
// mappings to an existing one: a field's type cannot change in place, and
// an index whose mapping disagrees fails with the store's reason, to be
// deleted so the runner backfills it) and the offsets index, and returns
// the offsets stored for the view. v is the view New was given.
func (s *Sink) Open(ctx context.Context, v projections.SinkView) (map[position.TP]int64, error) {
	if v.Name != s.view {
		return nil, fmt.Errorf("search: the sink of view %s opened for view %s", s.view, v.Name)
	}
	if err := s.ensureIndex(ctx, s.index, map[string]any{"mappings": s.mappings}); err != nil {
		return nil, err
	}
	offsetsIndex := map[string]any{
		"settings": map[string]any{"number_of_shards": 1},
		"mappings": map[string]any{"dynamic": false, "properties": map[string]any{}},
	}
	if err := s.ensureIndex(ctx, s.offsets, offsetsIndex); err != nil {
		return nil, err
	}
	return s.readOffsets(ctx)
}

// ensureIndex creates an index, or when it exists puts the mappings again
// (adding fields a newer schema declares).
func (s *Sink) ensureIndex(ctx context.Context, name string, body map[string]any) error {
	data, _ := json.Marshal(body)
	status, resp, err := s.c.do(ctx, http.MethodPut, "/"+name, data, false)
	if err != nil {
		return err
	}
	if status == http.StatusOK {
		return nil
	}
	if status != http.StatusBadRequest || errorType(resp) != "resource_already_exists_exception" {
		return fmt.Errorf("search: creating index %s: %s", name, apiError(status, resp))
	}
	mdata, _ := json.Marshal(body["mappings"])
	status, resp, err = s.c.do(ctx, http.MethodPut, "/"+name+"/_mapping", mdata, false)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("search: index %s exists with mappings that disagree with the view's schema: %s (delete the index and Strata backfills it)", name, apiError(status, resp))
	}
	return nil
}

// offsetsDoc is the document that holds a view's offsets.
type offsetsDoc struct {
	Offsets []offset `json:"offsets"`
}

type offset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

func (s *Sink) readOffsets(ctx context.Context) (map[position.TP]int64, error) {
	status, resp, err := s.c.do(ctx, http.MethodGet, "/"+s.offsets+"/_doc/"+url.PathEscape(s.view), nil, false)
	if err != nil {
		return nil, err
	}
	if status == http.StatusNotFound {
		return nil, nil
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("search: reading the offsets of view %s: %s", s.view, apiError(status, resp))
	}
	var doc struct {
		Source offsetsDoc `json:"_source"`
	}
	if err := json.Unmarshal(resp, &doc); err != nil {
		return nil, fmt.Errorf("search: the offsets document of view %s in %s: %w", s.view, s.offsets, err)
	}
	out := map[position.TP]int64{}
	for _, o := range doc.Source.Offsets {
		out[position.TP{Topic: o.Topic, Partition: o.Partition}] = o.Offset
	}
	return out, nil
}

// Write indexes the batch's rows, each with its RowVersion as the
// document's external version, in _bulk requests of at most 5 MB, then
// the offsets. A version conflict (the index has that version or a newer
// one: a replay) counts as done; any other refused item fails the Write,
// naming it, and the runner retries the batch.
//
// A deleted row is deleted with its version. The index remembers a
// deleted document's version for index.gc_deletes (60s by default): a
// replay that comes later than that and carries an older state of the row
// re-creates it, until the replay reaches the delete again. A backfill
// never does (it copies only Pebble's rows).
func (s *Sink) Write(ctx context.Context, b projections.SinkBatch) error {
	var body bytes.Buffer
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		err := s.bulk(ctx, body.Bytes())
		body.Reset()
		n = 0
		return err
	}
	// A backfill replaces documents of an equal version too (see
	// projections.SinkBatch): external_gte, which both Elasticsearch 8
	// and OpenSearch 2 take.
	versionType := "external"
	if b.Backfill {
		versionType = "external_gte"
	}
	for _, r := range b.Rows {
		action := "index"
		if r.Row == nil {
			action = "delete"
		}
		meta, _ := json.Marshal(map[string]any{action: map[string]any{
			"_index": s.index, "_id": r.Key, "version": r.Version, "version_type": versionType,
		}})
		body.Write(meta)
		body.WriteByte('\n')
		if r.Row != nil {
			doc, err := withKey(r.Key, r.Row)
			if err != nil {
				return fmt.Errorf("search: view %s row %q: %w", s.view, r.Key, err)
			}
			body.Write(doc)
			body.WriteByte('\n')
		}
		n++
		if body.Len() >= maxBulkBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if len(b.Offsets) == 0 {
		return nil
	}
	return s.writeOffsets(ctx, b.Offsets)
}

// withKey adds the key field to a row's JSON object.
func withKey(key string, row json.RawMessage) ([]byte, error) {
	row = bytes.TrimSpace(row)
	if len(row) < 2 || row[0] != '{' {
		return nil, errors.New("the row is not a JSON object")
	}
	k, _ := json.Marshal(key)
	out := make([]byte, 0, len(row)+len(keyField)+len(k)+4)
	out = append(out, `{"`+keyField+`":`...)
	out = append(out, k...)
	rest := bytes.TrimSpace(row[1:])
	if len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, rest...), nil
}

// withoutKey undoes withKey on a document's _source, which the store
// returns as it was written. Should it not start as written, the key field
// is removed by decoding the document (the row then has its fields in
// name order).
func withoutKey(key string, src json.RawMessage) json.RawMessage {
	k, _ := json.Marshal(key)
	prefix := append([]byte(`{"`+keyField+`":`), k...)
	if rest, ok := bytes.CutPrefix(src, prefix); ok {
		if rest, ok := bytes.CutPrefix(rest, []byte(",")); ok {
			return append([]byte{'{'}, rest...)
		}
		return append([]byte{'{'}, rest...) // "}": an empty row
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(src, &m) != nil {
		return src
	}
	delete(m, keyField)
	out, _ := json.Marshal(m)
	return out
}

func (s *Sink) bulk(ctx context.Context, body []byte) error {
	status, resp, err := s.c.do(ctx, http.MethodPost, "/_bulk", body, true)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("search: bulk write of view %s: %s", s.view, apiError(status, resp))
	}
	var out struct {
		Errors bool                         `json:"errors"`
		Items  []map[string]json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(resp, &out); err != nil {
		return fmt.Errorf("search: bulk write of view %s: reading the answer: %w", s.view, err)
	}
	if !out.Errors {
		return nil
	}
	var bad []string
	for _, item := range out.Items {
		for action, raw := range item {
			var r struct {
				ID     string `json:"_id"`
				Status int    `json:"status"`
				Result string `json:"result"`
				Error  struct {
					Type   string `json:"type"`
					Reason string `json:"reason"`
				} `json:"error"`
			}
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("search: bulk write of view %s: reading an item: %w", s.view, err)
			}
			switch {
			case r.Status < 300:
			case r.Status == http.StatusConflict:
				// The index has this version or a newer one: a replay.
			case r.Status == http.StatusNotFound && action == "delete":
				// Deleting what is not there.
			default:
				bad = append(bad, fmt.Sprintf("%s %q: %d %s: %s", action, r.ID, r.Status, r.Error.Type, r.Error.Reason))
			}
		}
	}
	if len(bad) == 0 {
		return nil
	}
	more := ""
	if len(bad) > 3 {
		more = fmt.Sprintf(" (and %d more)", len(bad)-3)
		bad = bad[:3]
	}
	return fmt.Errorf("search: bulk write of view %s refused %s%s", s.view, strings.Join(bad, "; "), more)
}

func (s *Sink) writeOffsets(ctx context.Context, offsets map[position.TP]int64) error {
	doc := offsetsDoc{}
	for tp, o := range offsets {
		doc.Offsets = append(doc.Offsets, offset{tp.Topic, tp.Partition, o})
	}
	slices.SortFunc(doc.Offsets, func(a, b offset) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	data, _ := json.Marshal(doc)
	status, resp, err := s.c.do(ctx, http.MethodPut, "/"+s.offsets+"/_doc/"+url.PathEscape(s.view), data, false)
	if err != nil {
		return err
	}
	if status != http.StatusOK && status != http.StatusCreated {
		return fmt.Errorf("search: writing the offsets of view %s: %s", s.view, apiError(status, resp))
	}
	return nil
}

// Close drops the client's idle connections.
func (s *Sink) Close() error {
	s.c.Close()
	return nil
}

// Get reads a row (realtime: a written row is found at once, before any
// refresh) and its RowVersion.
func (s *Sink) Get(ctx context.Context, key string) (row json.RawMessage, version uint64, found bool, err error) {
	status, resp, err := s.c.do(ctx, http.MethodGet, "/"+s.index+"/_doc/"+url.PathEscape(key), nil, false)
	if err != nil {
		return nil, 0, false, err
	}
	if status == http.StatusNotFound {
		return nil, 0, false, nil
	}
	if status != http.StatusOK {
		return nil, 0, false, fmt.Errorf("search: reading row %q of view %s: %s", key, s.view, apiError(status, resp))
	}
	var doc struct {
		Found   bool            `json:"found"`
		Version uint64          `json:"_version"`
		Source  json.RawMessage `json:"_source"`
	}
	if err := json.Unmarshal(resp, &doc); err != nil {
		return nil, 0, false, fmt.Errorf("search: reading row %q of view %s: %w", key, s.view, err)
	}
	if !doc.Found {
		return nil, 0, false, nil
	}
	return withoutKey(key, doc.Source), doc.Version, true, nil
}

// Serves says whether the index of the view named index can be queried
// here.
func (s *Sink) Serves(index string) bool {
	_, ok := s.indexes[index]
	return ok
}

// Refresh makes every write so far visible to queries. The index does
// that by itself every index.refresh_interval (1s by default); a query
// that must see a given write (read-your-writes) calls it first.
func (s *Sink) Refresh(ctx context.Context) error {
	status, resp, err := s.c.do(ctx, http.MethodPost, "/"+s.index+"/_refresh", nil, false)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("search: refreshing %s: %s", s.index, apiError(status, resp))
	}
	return nil
}

// Query runs q, an index query of the view (q.Index one Serves), and
// returns the page like projections.Query.Run: rows whose Field equals
// q.Eq ordered by SortField then key, and the cursor of the next page. The
// cursor is base64url of the last row's sort values (search_after); a
// cursor that is not one is projections.ErrBadCursor.
func (s *Sink) Query(ctx context.Context, q projections.Query) ([]projections.Row, string, error) {
	ix, ok := s.indexes[q.Index]
	if !ok {
		return nil, "", fmt.Errorf("search: view %s: index %q is not served by the search index", s.view, q.Index)
	}
	order := "asc"
	if q.Desc {
		order = "desc"
	}
	req := map[string]any{
		"size":  q.Limit,
		"query": map[string]any{"bool": map[string]any{"filter": []any{map[string]any{"term": map[string]any{ix.Field: q.Eq}}}}},
		"sort": []any{
			map[string]any{ix.SortField: map[string]any{"order": order}},
			map[string]any{keyField: map[string]any{"order": order}},
		},
		"track_total_hits": false,
	}
	if q.Cursor != "" {
		after, err := decodeCursor(q.Cursor)
		if err != nil {
			return nil, "", err
		}
		req["search_after"] = after
	}
	data, _ := json.Marshal(req)
	status, resp, err := s.c.do(ctx, http.MethodPost, "/"+s.index+"/_search", data, false)
	if err != nil {
		return nil, "", err
	}
	if status == http.StatusBadRequest && q.Cursor != "" {
		return nil, "", fmt.Errorf("%w: use the next value of the previous page as is (%s)", projections.ErrBadCursor, apiError(status, resp))
	}
	if status != http.StatusOK {
		return nil, "", fmt.Errorf("search: querying view %s by %s: %s", s.view, q.Index, apiError(status, resp))
	}
	var out struct {
		Hits struct {
			Hits []struct {
				ID     string            `json:"_id"`
				Source json.RawMessage   `json:"_source"`
				Sort   []json.RawMessage `json:"sort"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(resp, &out); err != nil {
		return nil, "", fmt.Errorf("search: querying view %s: reading the answer: %w", s.view, err)
	}
	rows := make([]projections.Row, 0, len(out.Hits.Hits))
	for _, h := range out.Hits.Hits {
		rows = append(rows, projections.Row{Key: h.ID, Data: withoutKey(h.ID, h.Source)})
	}
	next := ""
	if n := len(out.Hits.Hits); n == q.Limit && n > 0 {
		last, _ := json.Marshal(out.Hits.Hits[n-1].Sort)
		next = base64.RawURLEncoding.EncodeToString(last)
	}
	return rows, next, nil
}

// decodeCursor reads a cursor back into search_after's sort values, as
// JSON kept verbatim (a long stays exact).
func decodeCursor(c string) ([]json.RawMessage, error) {
	data, err := base64.RawURLEncoding.DecodeString(c)
	var after []json.RawMessage
	if err == nil {
		err = json.Unmarshal(data, &after)
	}
	if err != nil || len(after) != 2 {
		return nil, fmt.Errorf("%w: use the next value of the previous page as is", projections.ErrBadCursor)
	}
	for _, v := range after {
		if len(v) == 0 || (v[0] != '"' && v[0] != '-' && (v[0] < '0' || v[0] > '9') && string(v) != "true" && string(v) != "false") {
			return nil, fmt.Errorf("%w: use the next value of the previous page as is", projections.ErrBadCursor)
		}
	}
	return after, nil
}
