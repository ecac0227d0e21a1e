package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/aggregates/order"
	"github.com/strata-es/strata/internal/codec"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/internal/store"
	"github.com/strata-es/strata/projections"
	"github.com/strata-es/strata/projections/accounts"
	"github.com/strata-es/strata/projections/orders"
	"github.com/strata-es/strata/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

// browseAPI is the API over an in-memory store holding the given
// aggregates (IDs of the account type), with the accounts and orders views
// (not running: nothing here needs Kafka) and dlq as its dead-letter
// reader.
func browseAPI(t testing.TB, ids []string, dlq func(context.Context, string, int) ([]kafka.TailRecord, string, bool, error)) (http.Handler, *store.DB) {
	t.Helper()
	db, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for i := 0; i < len(ids); i += 10000 {
		b := db.NewBatch()
		for j, id := range ids[i:min(i+10000, len(ids))] {
			a := store.Aggregate{Version: uint64(i+j)%7 + 1, Timestamp: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).UnixMilli(), State: []byte{0xC3, 0x01}}
			if err := store.PutAggregate(b, account.Name, id, &a); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Commit(b); err != nil {
			t.Fatal(err)
		}
	}
	// Into sstables, where a running node's aggregates mostly are.
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	cat := schemas.Default()
	codecs := map[string]codec.Codec{account.Name: {Type: account.Type, Catalog: cat}, order.Name: {Type: order.Type, Catalog: cat}}
	views := map[string]View{}
	for _, p := range []projections.Projection{accounts.Projection, orders.Projection} {
		live, err := projections.NewLive(projections.RunnerConfig{Projection: p, Codecs: codecs, DB: db, Names: kafka.Names{Namespace: "t"}, Partitions: 1})
		if err != nil {
			t.Fatal(err)
		}
		var ixs []string
		for _, ix := range p.Indexes {
			ixs = append(ixs, ix.Name)
		}
		views[p.Name] = View{Name: p.Name, Live: live, Indexes: ixs, Aggregates: p.Aggregates}
	}
	return Handler(Config{Codecs: codecs, DB: db, Applied: position.NewTracker(), Views: views, DLQ: dlq}), db
}

// get answers GET path from h and decodes its JSON into out.
func get(t testing.TB, h http.Handler, path string, out any) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: %d with Content-Type %q: %s", path, rec.Code, ct, rec.Body)
	}
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("GET %s: %d %s: %v", path, rec.Code, rec.Body, err)
		}
	}
	return rec.Code
}

func TestListAggregateTypesAndViews(t *testing.T) {
	h, _ := browseAPI(t, nil, nil)
	var types struct{ Aggregates []AggregateType }
	if code := get(t, h, "/v1/aggregates", &types); code != 200 || len(types.Aggregates) != 2 {
		t.Fatalf("types: %d %+v", code, types)
	}
	acc := types.Aggregates[0]
	if acc.Name != "account" || !slices.Equal(acc.Commands, []string{"Deposit", "OpenAccount", "Withdraw"}) ||
		!slices.Equal(acc.Events, []string{"AccountOpened", "MoneyDeposited", "MoneyWithdrawn"}) || types.Aggregates[1].Name != "order" {
		t.Errorf("types: %+v", types.Aggregates)
	}
	var views struct{ Views []ViewInfo }
	if code := get(t, h, "/v1/views", &views); code != 200 || len(views.Views) != 2 {
		t.Fatalf("views: %d %+v", code, views)
	}
	if v := views.Views[1]; v.Name != "orders" || !slices.Equal(v.Indexes, []string{"customer_id"}) || !slices.Equal(v.Aggregates, []string{"order"}) {
		t.Errorf("orders view: %+v", v)
	}
	if v := views.Views[0]; v.Name != "accounts" || v.Indexes == nil || len(v.Indexes) != 0 {
		t.Errorf("accounts view (no indexes: an empty list, not null): %+v", v)
	}
}

// TestSearchAggregates: IDs by prefix, page by page, each page bounded,
// and every bad parameter answered 400 with its reason.
func TestSearchAggregates(t *testing.T) {
	h, _ := browseAPI(t, []string{"acc-1", "acc-10", "acc-2", "acc-3", "bob-1", "ac", "ü-1"}, nil)
	page := func(q string) (int, AggregatesPage, string) {
		var p AggregatesPage
		var e Error
		code := get(t, h, "/v1/aggregates/account?"+q, &p)
		if code != 200 {
			get(t, h, "/v1/aggregates/account?"+q, &e)
		}
		return code, p, e.Error
	}
	ids := func(p AggregatesPage) string {
		var out []string
		for _, a := range p.Aggregates {
			out = append(out, a.ID)
		}
		return strings.Join(out, " ")
	}
	if code, p, _ := page(""); code != 200 || ids(p) != "ac acc-1 acc-10 acc-2 acc-3 bob-1 ü-1" || p.Next != "" {
		t.Fatalf("all: %d %q next %q", code, ids(p), p.Next)
	}
	// Pages of 2 over the acc- prefix, following next.
	var seen []string
	q := "prefix=acc-&limit=2"
	for n := 0; ; n++ {
		code, p, msg := page(q)
		if code != 200 || len(p.Aggregates) == 0 || len(p.Aggregates) > 2 || p.Prefix != "acc-" {
			t.Fatalf("page %d (%s): %d %+v %s", n, q, code, p, msg)
		}
		if a := p.Aggregates[0]; a.Version == 0 || !a.UpdatedAt.Equal(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)) {
			t.Errorf("summary %+v: want the version and time of the last event", a)
		}
		seen = append(seen, ids(p))
		if p.Next == "" {
			break
		}
		q = "prefix=acc-&limit=2&cursor=" + url.QueryEscape(p.Next)
	}
	if got := strings.Join(seen, " | "); got != "acc-1 acc-10 | acc-2 acc-3" {
		t.Errorf("pages: %s", got)
	}
	if code, p, _ := page("prefix=" + url.QueryEscape("ü")); code != 200 || ids(p) != "ü-1" {
		t.Errorf("a UTF-8 prefix: %d %q", code, ids(p))
	}
	if code, p, _ := page("prefix=zzz"); code != 200 || p.Aggregates == nil || len(p.Aggregates) != 0 {
		t.Errorf("no match: %d %+v (want an empty list, not null)", code, p)
	}
	cursor := base64.RawURLEncoding.EncodeToString([]byte("bob-1"))
	for _, tc := range []struct{ q, msg string }{
		{"limit=0", `limit="0": want 1 to 1000`},
		{"limit=1001", "want 1 to 1000"},
		{"limit=x", "want 1 to 1000"},
		{"prefix=a%01", "control character"},
		{"prefix=a%FF", "not valid UTF-8"},
		{"prefix=" + strings.Repeat("x", 257), "longer than an ID"},
		{"cursor=%21%21", "is not one of this search's"},
		{"prefix=acc-&cursor=" + cursor, "with the same prefix"},
		{"cursor=" + base64.RawURLEncoding.EncodeToString([]byte("a/b")), "is not one of this search's"},
		{"position=%21", "bad position token"},
	} {
		if code, _, msg := page(tc.q); code != 400 || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %d %q, want 400 containing %q", tc.q, code, msg, tc.msg)
		}
	}
	var e Error
	if code := get(t, h, "/v1/aggregates/spaceship", &e); code != 404 || !strings.Contains(e.Error, `unknown aggregate type "spaceship" (types: account, order)`) {
		t.Errorf("unknown type: %d %q", code, e.Error)
	}
}

func TestDeadLetters(t *testing.T) {
	var asked []string
	var fail error
	when := time.Date(2026, 11, 26, 12, 30, 0, 0, time.UTC)
	dlq := func(ctx context.Context, agg string, n int) ([]kafka.TailRecord, string, bool, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("a dead-letter read without a deadline")
		}
		asked = append(asked, fmt.Sprint(agg, " ", n))
		if fail != nil {
			return nil, "", false, fail
		}
		return []kafka.TailRecord{
			{Record: &kgo.Record{Partition: 2, Offset: 40, Timestamp: when, Key: []byte("acc-9"), Value: []byte("{not json"),
				Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/json")},
					{Key: kafka.HeaderDLQReason, Value: []byte("Deposit data: invalid character")},
					{Key: kafka.HeaderDLQSource, Value: []byte("t.account.commands/2/17")}}}, ValueBytes: 9},
			// A binary key, and a value cut inside a character.
			{Record: &kgo.Record{Partition: 0, Offset: 3, Timestamp: when.Add(-time.Minute), Key: []byte{0xff, 0x00}, Value: []byte("abc\xc3"),
				Headers: []kgo.RecordHeader{{Key: "bin", Value: []byte{0xfe}}}}, ValueBytes: 70000},
		}, "t.account.dlq", true, nil
	}
	h, _ := browseAPI(t, nil, dlq)
	var p DLQPage
	if code := get(t, h, "/v1/dlq/account?limit=7", &p); code != 200 || len(p.Records) != 2 || p.Topic != "t.account.dlq" || !p.Complete || p.Aggregate != "account" {
		t.Fatalf("dlq: %d %+v", code, p)
	}
	if !slices.Equal(asked, []string{"account 7"}) {
		t.Errorf("reads asked: %q", asked)
	}
	d := p.Records[0]
	if d.Key != "acc-9" || d.Value != "{not json" || d.Reason != "Deposit data: invalid character" || d.Source != "t.account.commands/2/17" ||
		d.Partition != 2 || d.Offset != 40 || !d.Timestamp.Equal(when) || d.ValueBytes != 9 || len(d.Headers) != 3 || d.Headers[0].Value != "application/json" {
		t.Errorf("dead letter: %+v", d)
	}
	d = p.Records[1]
	if d.Key != "" || d.KeyBase64 != "/wA=" || d.Value != "abc" || d.ValueBase64 != "" || d.ValueBytes != 70000 || d.Headers[0].ValueBase64 != "/g==" || d.Reason != "" {
		t.Errorf("binary dead letter: %+v", d)
	}
	var e Error
	if code := get(t, h, "/v1/dlq/account", &e); code != 200 || asked[1] != "account 50" {
		t.Errorf("default limit: %d %q", code, asked)
	}
	for _, tc := range []struct {
		path string
		code int
		msg  string
	}{
		{"/v1/dlq/account?limit=501", 400, "want 1 to 500"},
		{"/v1/dlq/spaceship", 404, `unknown aggregate type "spaceship"`},
	} {
		e = Error{}
		if code := get(t, h, tc.path, &e); code != tc.code || !strings.Contains(e.Error, tc.msg) {
			t.Errorf("%s: %d %q, want %d containing %q", tc.path, code, e.Error, tc.code, tc.msg)
		}
	}
	fail = errors.New("broker unreachable")
	if code := get(t, h, "/v1/dlq/order", &e); code != 503 || !strings.Contains(e.Error, "reading the dead-letter topic of order: broker unreachable") {
		t.Errorf("failed read: %d %q", code, e.Error)
	}
	h, _ = browseAPI(t, nil, nil)
	if code := get(t, h, "/v1/dlq/account", &e); code != 404 || !strings.Contains(e.Error, "reads no dead-letter topics") {
		t.Errorf("no reader: %d %q", code, e.Error)
	}
}

// TestParkedEventsAnswers: the answers of GET
// /v1/projections/{name}/parked other than a list of events, which the
// end-to-end suite reads from a projection that parks.
func TestParkedEventsAnswers(t *testing.T) {
	h, _ := browseAPI(t, nil, nil)
	var p ParkedPage
	if code := get(t, h, "/v1/projections/accounts/parked", &p); code != 200 || p.Projection != "accounts" || p.Events == nil || len(p.Events) != 0 || p.Next != "" {
		t.Errorf("nothing parked: %d %+v", code, p)
	}
	for _, tc := range []struct {
		path string
		code int
		msg  string
	}{
		{"/v1/projections/galaxies/parked", 404, `unknown projection "galaxies" (projections: accounts, orders)`},
		{"/v1/projections/accounts/parked?cursor=%21", 400, "bad cursor"},
		{"/v1/projections/accounts/parked?limit=0", 400, "want 1 to 1000"},
	} {
		var e Error
		if code := get(t, h, tc.path, &e); code != tc.code || !strings.Contains(e.Error, tc.msg) {
			t.Errorf("%s: %d %q, want %d containing %q", tc.path, code, e.Error, tc.code, tc.msg)
		}
	}
}

// BenchmarkSearchAggregates: the console's typeahead over 100,000
// aggregates in Pebble: GET /v1/aggregates/account?prefix=P&limit=10 with
// prefixes of 1 to 8 characters of existing IDs (from thousands of matches
// down to one), through the whole handler. It reports the median and 99th
// percentile latency.
func BenchmarkSearchAggregates(b *testing.B) {
	const n = 100_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("acc-%06d", i*7919%n)
	}
	h, _ := browseAPI(b, ids, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		id := ids[rng.IntN(n)]
		path := "/v1/aggregates/account?limit=10&prefix=" + id[:1+rng.IntN(len(id))]
		start := time.Now()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		lat = append(lat, time.Since(start))
		if rec.Code != 200 {
			b.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)*90/100].Microseconds()), "p90-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}
