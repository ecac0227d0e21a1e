package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/internal/sinks/sinktest"
	"github.com/strata-es/strata/projections"
	"github.com/strata-es/strata/projections/orders"
	"github.com/strata-es/strata/schemas"
)

// servers are the real servers the tests run against, each named by
// the environment variable that gives its address (compose/sinks-up.sh
// starts both). The sink claims to work with both: each test that talks
// to a server runs once per server.
var servers = []struct{ name, env string }{
	{"opensearch", "STRATA_TEST_SEARCH"},
	{"elasticsearch", "STRATA_TEST_ELASTICSEARCH"},
}

// forEachServer runs test as a subtest per server, given the server's
// address. A server whose variable is unset skips its subtest, or fails
// it when CI is set (sinktest.Server).
func forEachServer(t *testing.T, test func(t *testing.T, base string)) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			test(t, strings.TrimRight(sinktest.Server(t, srv.env), "/"))
		})
	}
}

// ordersView is the orders view under a namespace of the test's own.
func ordersView(t *testing.T) projections.SinkView {
	sub, ok := schemas.Default().Subject("views/orders")
	if !ok {
		t.Fatal("no views/orders schema")
	}
	return projections.SinkView{
		Name: "orders", Namespace: fmt.Sprintf("strata-test-%d", time.Now().UnixNano()),
		Schema: sub.Latest().Schema, Indexes: orders.Projection.Indexes,
	}
}

// openSink opens the orders view on urls, deleting its indexes when the
// test ends.
func openSink(t *testing.T, urls ...string) (*Sink, projections.SinkView) {
	t.Helper()
	c, err := NewClient(Config{URLs: urls, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	v := ordersView(t)
	s, err := New(c, v)
	if err != nil {
		t.Fatal(err)
	}
	if off, err := s.Open(context.Background(), v); err != nil || off != nil {
		t.Fatalf("Open = %v, %v; want no offsets", off, err)
	}
	t.Cleanup(func() {
		for _, ix := range []string{s.index, s.offsets} {
			_, _, _ = s.c.do(context.Background(), http.MethodDelete, "/"+ix, nil, false)
		}
		_ = s.Close()
	})
	return s, v
}

func orderRow(id, customer string, created time.Time, status string) json.RawMessage {
	data, _ := json.Marshal(orders.Row{ID: id, CustomerID: customer, Status: status, CreatedAt: created.UTC(), UpdatedAt: created.UTC()})
	return data
}

func mustGet(t *testing.T, s *Sink, key string) (orders.Row, uint64, bool) {
	t.Helper()
	data, v, found, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	var r orders.Row
	if found {
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatalf("row %s: %v: %s", key, err, data)
		}
		if strings.Contains(string(data), keyField) {
			t.Fatalf("row %s read back with the key field: %s", key, data)
		}
	}
	return r, v, found
}

func TestMappingFromTheViewSchema(t *testing.T) {
	m, err := mapping(ordersView(t).Schema)
	if err != nil {
		t.Fatal(err)
	}
	props := m["properties"].(map[string]any)
	for field, want := range map[string]string{
		"id": "keyword", "customer_id": "keyword", "status": "keyword", "total": "long",
		"created_at": "date", "version": "long", "items": "object", keyField: "keyword",
	} {
		if got := props[field].(map[string]any)["type"]; got != want {
			t.Errorf("%s mapped to %v, want %s", field, got, want)
		}
	}
	items := props["items"].(map[string]any)["properties"].(map[string]any)
	if items["qty"].(map[string]any)["type"] != "integer" || items["sku"].(map[string]any)["type"] != "keyword" {
		t.Errorf("items mapped to %v", items)
	}
	if got := string(withoutKey(`k"1`, mustWithKey(t, `k"1`, `{"b":1,"a":2}`))); got != `{"b":1,"a":2}` {
		t.Errorf("withKey then withoutKey = %s", got)
	}
	if got := string(withoutKey("k", mustWithKey(t, "k", `{}`))); got != `{}` {
		t.Errorf("withKey then withoutKey of {} = %s", got)
	}
	if got := string(withoutKey("k", json.RawMessage(`{"a":1,"strata_key":"k"}`))); got != `{"a":1}` {
		t.Errorf("withoutKey of a rewritten document = %s", got)
	}
	if m["dynamic"] != false {
		t.Errorf("dynamic = %v, want false", m["dynamic"])
	}
}

func mustWithKey(t *testing.T, key, row string) json.RawMessage {
	t.Helper()
	doc, err := withKey(key, json.RawMessage(row))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestVersionGuardAndReplays(t *testing.T) { forEachServer(t, testVersionGuardAndReplays) }

func testVersionGuardAndReplays(t *testing.T, base string) {
	s, v := openSink(t, base)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	tp := position.TP{Topic: v.Namespace + ".order.events", Partition: 3}
	write := func(b projections.SinkBatch) {
		t.Helper()
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	write(projections.SinkBatch{Rows: []projections.SinkRow{
		{Key: "o1", Version: 2, Row: orderRow("o1", "c1", t0, "confirmed")},
		{Key: "o2", Version: 1, Row: orderRow("o2", "c1", t0, "pending")},
	}, Offsets: map[position.TP]int64{tp: 10}})
	// A replay of older and equal versions, in other batches: conflicts,
	// which are success, and nothing moves back.
	write(projections.SinkBatch{Rows: []projections.SinkRow{{Key: "o1", Version: 1, Row: orderRow("o1", "c1", t0, "pending")}}})
	write(projections.SinkBatch{Rows: []projections.SinkRow{{Key: "o1", Version: 2, Row: orderRow("o1", "c1", t0, "REPLAYED")}}})
	if r, ver, ok := mustGet(t, s, "o1"); !ok || r.Status != "confirmed" || ver != 2 || !r.CreatedAt.Equal(t0) {
		t.Fatalf("o1 after replays = %+v v%d found=%v, want confirmed v2 created %s", r, ver, ok, t0)
	}
	write(projections.SinkBatch{Rows: []projections.SinkRow{{Key: "o1", Version: 3, Row: orderRow("o1", "c1", t0, "shipped")}}})
	if r, ver, _ := mustGet(t, s, "o1"); r.Status != "shipped" || ver != 3 {
		t.Fatalf("o1 = %s v%d, want shipped v3", r.Status, ver)
	}

	// A delete with its version; a replayed older put does not bring the
	// row back, and deleting what is gone is fine.
	write(projections.SinkBatch{Rows: []projections.SinkRow{{Key: "o2", Version: 2}, {Key: "never", Version: 1}}})
	if _, _, ok := mustGet(t, s, "o2"); ok {
		t.Fatal("o2 still there after its delete")
	}
	write(projections.SinkBatch{Rows: []projections.SinkRow{{Key: "o2", Version: 1, Row: orderRow("o2", "c1", t0, "pending")}}})
	if _, _, ok := mustGet(t, s, "o2"); ok {
		t.Fatal("a replayed older version re-created the deleted o2")
	}

	// The offsets are what a new Open finds.
	s2, _ := New(s.c, v)
	off, err := s2.Open(ctx, v)
	if err != nil || off[tp] != 10 || len(off) != 1 {
		t.Fatalf("Open after writes = %v, %v; want {%v: 10}", off, err, tp)
	}
}

func TestRefusedItemsFailTheWrite(t *testing.T) { forEachServer(t, testRefusedItemsFailTheWrite) }

func testRefusedItemsFailTheWrite(t *testing.T, base string) {
	s, _ := openSink(t, base)
	ctx := context.Background()
	bad := json.RawMessage(`{"id":"b1","customer_id":"c1","created_at":"not a time"}`)
	err := s.Write(ctx, projections.SinkBatch{Rows: []projections.SinkRow{
		{Key: "ok1", Version: 1, Row: orderRow("ok1", "c1", time.Now(), "pending")},
		{Key: "b1", Version: 1, Row: bad},
	}})
	if err == nil || !strings.Contains(err.Error(), `"b1"`) || !strings.Contains(err.Error(), "400") {
		t.Fatalf("Write of a row the mapping refuses = %v, want an error naming b1 and 400", err)
	}
	err = s.Write(ctx, projections.SinkBatch{Rows: []projections.SinkRow{{Key: "arr", Version: 1, Row: json.RawMessage(`[1]`)}}})
	if err == nil || !strings.Contains(err.Error(), "not a JSON object") {
		t.Fatalf("Write of a non-object row = %v", err)
	}
}

func TestQueryPagesNewestFirst(t *testing.T) { forEachServer(t, testQueryPagesNewestFirst) }

func testQueryPagesNewestFirst(t *testing.T, base string) {
	s, _ := openSink(t, base)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var rows []projections.SinkRow
	// 23 orders of c1 (pairs created in the same millisecond, ordered by
	// key then), 5 of c2.
	for i := range 23 {
		id := fmt.Sprintf("o%02d", i)
		rows = append(rows, projections.SinkRow{Key: id, Version: 1, Row: orderRow(id, "c1", t0.Add(time.Duration(i/2)*time.Second), "pending")})
	}
	for i := range 5 {
		id := fmt.Sprintf("p%02d", i)
		rows = append(rows, projections.SinkRow{Key: id, Version: 1, Row: orderRow(id, "c2", t0.Add(time.Hour), "pending")})
	}
	if err := s.Write(ctx, projections.SinkBatch{Rows: rows}); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !s.Serves(orders.ByCustomer) || s.Serves("nope") {
		t.Fatal("Serves is wrong")
	}
	var got []string
	cursor := ""
	pages := 0
	for {
		page, next, err := s.Query(ctx, projections.Query{Index: orders.ByCustomer, Eq: "c1", Desc: true, Limit: 5, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range page {
			var o orders.Row
			if err := json.Unmarshal(r.Data, &o); err != nil || o.ID != r.Key || o.CustomerID != "c1" {
				t.Fatalf("row %s = %s (%v)", r.Key, r.Data, err)
			}
			got = append(got, r.Key)
		}
		if next == "" {
			break
		}
		cursor = next
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	var want []string
	for i := 22; i >= 0; i-- {
		want = append(want, fmt.Sprintf("o%02d", i))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") || pages != 5 {
		t.Fatalf("pages=%d\n got %v\nwant %v", pages, got, want)
	}
	asc, _, err := s.Query(ctx, projections.Query{Index: orders.ByCustomer, Eq: "c1", Limit: 3})
	if err != nil || len(asc) != 3 || asc[0].Key != "o00" || asc[2].Key != "o02" {
		t.Fatalf("ascending = %v, %v", asc, err)
	}
	for _, c := range []string{"%%%", "bm90IGpzb24", "WzEsMiwzXQ", "W3t9LDFd"} {
		if _, _, err := s.Query(ctx, projections.Query{Index: orders.ByCustomer, Eq: "c1", Limit: 3, Cursor: c}); !errors.Is(err, projections.ErrBadCursor) {
			t.Errorf("cursor %q: %v, want ErrBadCursor", c, err)
		}
	}
}

func TestNodeDownFailsFastThenRecovers(t *testing.T) {
	forEachServer(t, testNodeDownFailsFastThenRecovers)
}

func testNodeDownFailsFastThenRecovers(t *testing.T, base string) {
	target := strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://")
	p := sinktest.StartProxy(t, target)
	s, _ := openSink(t, base) // created through the real address
	c, err := NewClient(Config{URLs: []string{"http://" + p.Addr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s.c = c
	ctx := context.Background()
	row := func(v uint64, status string) projections.SinkBatch {
		return projections.SinkBatch{Rows: []projections.SinkRow{{Key: "d1", Version: v, Row: orderRow("d1", "c1", time.Now(), status)}}}
	}
	if err := s.Write(ctx, row(1, "pending")); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	start := time.Now()
	err = s.Write(ctx, row(2, "confirmed"))
	if !errors.Is(err, ErrUnavailable) || time.Since(start) > 3*time.Second {
		t.Fatalf("Write with the node down = %v after %s, want ErrUnavailable within the timeout", err, time.Since(start))
	}
	p.Start(t)
	if err := s.Write(ctx, row(2, "confirmed")); err != nil {
		t.Fatalf("Write once the node is back: %v", err)
	}
	if r, v, _ := mustGet(t, s, "d1"); r.Status != "confirmed" || v != 2 {
		t.Fatalf("d1 = %s v%d, want confirmed v2", r.Status, v)
	}
}

func TestFailoverToTheNextURL(t *testing.T) { forEachServer(t, testFailoverToTheNextURL) }

func testFailoverToTheNextURL(t *testing.T, base string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	s, _ := openSink(t, dead, base)
	for i := range 4 { // every request, whichever node it starts with
		if err := s.Write(context.Background(), projections.SinkBatch{Rows: []projections.SinkRow{
			{Key: "f1", Version: uint64(i + 1), Row: orderRow("f1", "c1", time.Now(), "pending")},
		}}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
}

func TestClientConfigErrors(t *testing.T) {
	for _, cfg := range []Config{{}, {URLs: []string{"ftp://x"}}, {URLs: []string{"http://x"}, CAFile: "/nonexistent"}} {
		if _, err := NewClient(cfg); err == nil {
			t.Errorf("NewClient(%+v) = nil error", cfg)
		}
	}
	c, _ := NewClient(Config{URLs: []string{"http://127.0.0.1:9"}})
	if _, err := New(c, projections.SinkView{Name: "x", Namespace: "y"}); err == nil || !strings.Contains(err.Error(), "no Avro schema") {
		t.Errorf("Open without a schema = %v", err)
	}
}

func TestBackfillReplacesEqualVersions(t *testing.T) {
	forEachServer(t, testBackfillReplacesEqualVersions)
}

// A backfill writes with version_type=external_gte: a row of the version
// the index has replaces it (a rebuilt view's row may differ at an equal
// version), an older one still does not.
func testBackfillReplacesEqualVersions(t *testing.T, base string) {
	s, _ := openSink(t, base)
	ctx := context.Background()
	t0 := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	write := func(backfill bool, ver uint64, status string) {
		t.Helper()
		if err := s.Write(ctx, projections.SinkBatch{Backfill: backfill, Rows: []projections.SinkRow{
			{Key: "b1", Version: ver, Row: orderRow("b1", "c1", t0, status)},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	write(false, 2, "confirmed")
	write(false, 2, "live replay") // equal version, live: kept as is
	if r, ver, _ := mustGet(t, s, "b1"); r.Status != "confirmed" || ver != 2 {
		t.Fatalf("after a live replay b1 = %s v%d, want confirmed v2", r.Status, ver)
	}
	write(true, 2, "rebuilt")
	if r, ver, _ := mustGet(t, s, "b1"); r.Status != "rebuilt" || ver != 2 {
		t.Fatalf("after a backfill of the same version b1 = %s v%d, want rebuilt v2", r.Status, ver)
	}
	write(true, 1, "older")
	if r, ver, _ := mustGet(t, s, "b1"); r.Status != "rebuilt" || ver != 2 {
		t.Fatalf("after a backfill of an older version b1 = %s v%d, want rebuilt v2", r.Status, ver)
	}
}

func TestOpenAnExistingIndex(t *testing.T) { forEachServer(t, testOpenAnExistingIndex) }

// Opening a view whose index exists keeps its documents; an index whose
// mapping a field's type cannot be changed to fails, naming the index
// and the fix.
func testOpenAnExistingIndex(t *testing.T, base string) {
	s, v := openSink(t, base)
	ctx := context.Background()
	if err := s.Write(ctx, projections.SinkBatch{Rows: []projections.SinkRow{
		{Key: "e1", Version: 1, Row: orderRow("e1", "c1", time.Now(), "pending")},
	}}); err != nil {
		t.Fatal(err)
	}
	again, err := New(s.c, v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Open(ctx, v); err != nil {
		t.Fatalf("Open of an existing index: %v", err)
	}
	if _, _, ok := mustGet(t, again, "e1"); !ok {
		t.Fatal("e1 gone after opening its index again")
	}

	other := ordersView(t)
	other.Namespace += "-clash"
	clash, err := New(s.c, other)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"mappings":{"properties":{"status":{"type":"long"}}}}`)
	if status, resp, err := s.c.do(ctx, http.MethodPut, "/"+clash.index, body, false); err != nil || status != http.StatusOK {
		t.Fatalf("creating %s: %d %s %v", clash.index, status, resp, err)
	}
	t.Cleanup(func() {
		for _, ix := range []string{clash.index, clash.offsets} {
			_, _, _ = s.c.do(context.Background(), http.MethodDelete, "/"+ix, nil, false)
		}
	})
	_, err = clash.Open(ctx, other)
	if err == nil || !strings.Contains(err.Error(), clash.index) || !strings.Contains(err.Error(), "delete the index") {
		t.Fatalf("Open of an index with a clashing mapping = %v, want an error naming %s and the fix", err, clash.index)
	}
}
