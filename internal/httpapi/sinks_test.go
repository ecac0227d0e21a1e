package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/strata-es/strata/aggregates/order"
	"github.com/strata-es/strata/internal/codec"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/internal/sinks/cache"
	"github.com/strata-es/strata/internal/sinks/search"
	"github.com/strata-es/strata/internal/sinks/sinktest"
	"github.com/strata-es/strata/internal/store"
	"github.com/strata-es/strata/projections"
	"github.com/strata-es/strata/projections/orders"
	"github.com/strata-es/strata/schemas"
)

// seedAPI is the API serving the orders view from a real search index and
// a real Redis cache (under a namespace and key prefix of the test's
// own), with Pebble in memory behind them.
func seedAPI(t *testing.T) (http.Handler, *store.DB, View, []projections.Sink) {
	t.Helper()
	searchURL := sinktest.Server(t, "STRATA_TEST_SEARCH")
	redisURL := sinktest.Server(t, "STRATA_TEST_REDIS")
	db, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cat := schemas.Default()
	codecs := map[string]codec.Codec{order.Name: {Type: order.Type, Catalog: cat}}
	live, err := projections.NewLive(projections.RunnerConfig{Projection: orders.Projection, Codecs: codecs, DB: db, Names: kafka.Names{Namespace: "t"}, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := cat.Subject("views/orders")
	ns := fmt.Sprintf("strata-test-%d", time.Now().UnixNano())
	sv := projections.SinkView{Name: "orders", Namespace: ns, Schema: sub.Latest().Schema, Indexes: orders.Projection.Indexes}
	sc, err := search.NewClient(search.Config{URLs: []string{searchURL}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := search.New(sc, sv)
	if err != nil {
		t.Fatal(err)
	}
	rdb, err := cache.NewClient(cache.Config{URL: redisURL})
	if err != nil {
		t.Fatal(err)
	}
	ch := cache.New(rdb, sv, ns+":order", 0)
	ctx := context.Background()
	for _, s := range []projections.Sink{idx, ch} {
		if _, err := s.Open(ctx, sv); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, searchURL+"/"+idx.Index()+","+ns+"-strata-offsets", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
		keys, _ := rdb.Keys(ctx, ns+":*").Result()
		rdb.Del(ctx, append(keys, "strata-offsets:"+ns+":orders")...)
		_ = ch.Close()
	})
	v := View{Name: "orders", Live: live, Indexes: []string{orders.ByCustomer}, Aggregates: orders.Projection.Aggregates, Cache: ch, Search: idx}
	h := Handler(Config{Codecs: codecs, DB: db, Applied: position.NewTracker(), Views: map[string]View{"orders": v}})
	return h, db, v, []projections.Sink{idx, ch}
}

// serve answers GET path, returning the status, the source header and
// the body.
func serve(t *testing.T, h http.Handler, path string) (int, string, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Header().Get(SourceHeader), rec.Body.Bytes()
}

func TestSeedReadModelFromSinks(t *testing.T) {
	h, _, v, sinks := seedAPI(t)
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	rowOf := func(id, customer string, i int, status string, version int64) json.RawMessage {
		data, _ := json.Marshal(orders.Row{ID: id, CustomerID: customer, Status: status, CreatedAt: t0.Add(time.Duration(i) * time.Minute), UpdatedAt: t0, Version: version})
		return data
	}
	// What the runner does with a batch: every sink, the cache last.
	write := func(rows ...projections.SinkRow) {
		t.Helper()
		for _, s := range sinks {
			if err := s.Write(ctx, projections.SinkBatch{Rows: rows}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var rows []projections.SinkRow
	for i := range 12 {
		id := fmt.Sprintf("ord-%02d", i)
		rows = append(rows, projections.SinkRow{Key: id, Version: 1, Row: rowOf(id, "cust-1", i, "pending", 1)})
	}
	rows = append(rows, projections.SinkRow{Key: "ord-x", Version: 1, Row: rowOf("ord-x", "cust-2", 99, "pending", 1)})
	write(rows...)

	// get_order: the cache holds what the projection wrote.
	code, src, body := serve(t, h, "/v1/views/orders/ord-03")
	if code != 200 || src != "cache" || string(body) != string(rows[3].Row)+"\n" {
		t.Fatalf("GET ord-03 = %d from %q: %s", code, src, body)
	}
	// Expired from the cache: read from the index, which fills the cache
	// with the row and its version.
	if n, err := evict(t, v.Cache, "ord-03"); err != nil || n != 1 {
		t.Fatalf("evicting ord-03: %d, %v", n, err)
	}
	code, src, body = serve(t, h, "/v1/views/orders/ord-03")
	if code != 200 || src != "search" || string(body) != string(rows[3].Row)+"\n" {
		t.Fatalf("GET ord-03 after eviction = %d from %q: %s", code, src, body)
	}
	if e, hit, err := v.Cache.Get(ctx, "ord-03"); err != nil || !hit || e.Version != 1 || string(e.Row) != string(rows[3].Row) {
		t.Fatalf("cache after the fill = %+v %v %v", e, hit, err)
	}
	if code, src, _ = serve(t, h, "/v1/views/orders/ord-03"); code != 200 || src != "cache" {
		t.Fatalf("GET ord-03 after the fill = %d from %q", code, src)
	}
	// The projection changes and deletes rows: reads follow at once.
	write(projections.SinkRow{Key: "ord-03", Version: 2, Row: rowOf("ord-03", "cust-1", 3, "confirmed", 2)}, projections.SinkRow{Key: "ord-x", Version: 2})
	if _, src, body = serve(t, h, "/v1/views/orders/ord-03"); src != "cache" || string(body) != string(rowOf("ord-03", "cust-1", 3, "confirmed", 2))+"\n" {
		t.Fatalf("GET ord-03 after a change = %q %s", src, body)
	}
	if code, src, body = serve(t, h, "/v1/views/orders/ord-x"); code != 404 || src != "cache" {
		t.Fatalf("GET of a deleted order = %d from %q: %s", code, src, body)
	}
	// Unknown everywhere: the index says so; nothing is cached.
	if code, src, _ = serve(t, h, "/v1/views/orders/nope"); code != 404 || src != "search" {
		t.Fatalf("GET of an unknown order = %d from %q", code, src)
	}

	// search_orders: the customer's orders newest first, paged, from the
	// index, in the JSON the Pebble index query answers.
	if err := v.Search.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	path := "/v1/views/orders?index=customer_id&eq=cust-1&order=desc&limit=5"
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		code, src, body := serve(t, h, path)
		var page ViewPage
		if code != 200 || src != "search" || json.Unmarshal(body, &page) != nil {
			t.Fatalf("GET %s = %d from %q: %s", path, code, src, body)
		}
		for _, r := range page.Rows {
			got = append(got, r.Key)
		}
		if page.Next == "" {
			break
		}
		path = "/v1/views/orders?index=customer_id&eq=cust-1&order=desc&limit=5&cursor=" + page.Next
	}
	want := []string{}
	for i := 11; i >= 0; i-- {
		want = append(want, fmt.Sprintf("ord-%02d", i))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("search_orders:\n got %v\nwant %v", got, want)
	}
	if code, _, body := serve(t, h, "/v1/views/orders?index=customer_id&eq=cust-1&cursor=bm9wZQ"); code != 400 {
		t.Fatalf("a bad cursor = %d: %s", code, body)
	}
	// Without an index, the query is Pebble's.
	if code, src, _ := serve(t, h, "/v1/views/orders?limit=2"); code != 200 || src != "pebble" {
		t.Fatalf("GET /v1/views/orders = %d from %q", code, src)
	}
}

// evict drops a row's cache entry, as its TTL would.
func evict(t *testing.T, c *cache.Sink, key string) (int64, error) {
	rdb, err := cache.NewClient(cache.Config{URL: sinktest.Server(t, "STRATA_TEST_REDIS")})
	if err != nil {
		return 0, err
	}
	defer rdb.Close()
	return rdb.Del(context.Background(), c.Key(key)).Result()
}

// TestRowFromPebbleFillsTheCache: a view with a cache and no index reads
// a miss from Pebble and fills the cache, which the projection's next
// write replaces.
func TestRowFromPebbleFillsTheCache(t *testing.T) {
	_, db, v, _ := seedAPI(t)
	v.Search = nil
	h := Handler(Config{DB: db, Applied: position.NewTracker(), Views: map[string]View{"orders": v}})
	row := json.RawMessage(`{"id":"p1","status":"pending"}`)
	b := db.NewBatch()
	if err := b.Set(projections.RowKey(v.Live.Current().Storage(), "p1"), row, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	code, src, body := serve(t, h, "/v1/views/orders/p1")
	if code != 200 || src != "pebble" || string(body) != string(row)+"\n" {
		t.Fatalf("GET p1 = %d from %q: %s", code, src, body)
	}
	ctx := context.Background()
	if e, hit, _ := v.Cache.Get(ctx, "p1"); !hit || e.Version != 0 || string(e.Row) != string(row) {
		t.Fatalf("cache after a Pebble fill = %+v hit=%v", e, hit)
	}
	if err := v.Cache.Write(ctx, projections.SinkBatch{Rows: []projections.SinkRow{{Key: "p1", Version: 1, Row: json.RawMessage(`{"id":"p1","status":"confirmed"}`)}}}); err != nil {
		t.Fatal(err)
	}
	if _, src, body := serve(t, h, "/v1/views/orders/p1"); src != "cache" || string(body) != `{"id":"p1","status":"confirmed"}`+"\n" {
		t.Fatalf("GET p1 after the projection's write = %q %s", src, body)
	}
}
