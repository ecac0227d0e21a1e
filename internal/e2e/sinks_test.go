package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/sinks/cache"
	"github.com/strata-es/strata/internal/sinks/search"
	"github.com/strata-es/strata/internal/sinks/sinktest"
	"github.com/strata-es/strata/projections"
)

// testSeedReadModelOnSinks: the seed's read model on the stores it names,
// fed by Strata from the events topic. Orders go to a real OpenSearch
// index and a real Redis cache; get_order reads the cache, then the
// index; search_orders pages the customer's orders newest first from the
// index. With the index's server away for a while, commands go on, the
// view waits (status and /readyz say why) and, once it is back, the index
// has every order: nothing is skipped.
func testSeedReadModelOnSinks(t *testing.T, b *broker) {
	searchURL := sinktest.Server(t, "STRATA_TEST_SEARCH")
	redisURL := sinktest.Server(t, "STRATA_TEST_REDIS")
	u, err := url.Parse(searchURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := sinktest.StartProxy(t, u.Host) // the index's server, as the node reaches it
	sc, err := search.NewClient(search.Config{URLs: []string{"http://" + proxy.Addr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rdb, err := cache.NewClient(cache.Config{URL: redisURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	ns := namespace()
	var cached *cache.Sink
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir(), sinks: func(v projections.SinkView) ([]projections.Sink, error) {
		if v.Name != "orders" {
			return nil, nil
		}
		idx, err := search.New(sc, v)
		if err != nil {
			return nil, err
		}
		cached = cache.New(rdb, v, "order", time.Hour)
		return []projections.Sink{idx, cached}, nil // the cache last, as cmd/strata builds them
	}})
	t.Cleanup(func() {
		// The test's index: the namespace is the test's own.
		req, _ := http.NewRequest("DELETE", searchURL+"/"+ns+"-orders", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})

	customer := "c-" + ns
	send := func(id, typ, data string) string {
		t.Helper()
		var res map[string]any
		if code := s.do(t, "POST", "/v1/commands/order/"+id, fmt.Sprintf(`{"type":%q,"data":%s}`, typ, data), &res); code != 200 {
			t.Fatalf("%s %s: %d %v", id, typ, code, res)
		}
		return res["position"].(string)
	}
	create := func(i int) string {
		time.Sleep(3 * time.Millisecond) // distinct creation times
		return send(fmt.Sprintf("%s-o%d", ns, i), "CreateOrder", fmt.Sprintf(`{"customer_id":%q,"items":[{"sku":"A","qty":%d,"unit_price":100}]}`, customer, i))
	}
	var pos string
	for i := 1; i <= 5; i++ {
		pos = create(i)
	}
	pos2 := send(ns+"-o2", "ConfirmOrder", `{}`)

	get := func(id, position string) (int, string, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("GET", s.url+"/v1/views/orders/"+id+"?position="+position, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var row map[string]any
		decodeJSON(t, resp, &row)
		return resp.StatusCode, resp.Header.Get("X-Strata-Source"), row
	}
	// get_order: the projection wrote the row to the cache.
	code, src, row := get(ns+"-o2", pos2)
	if code != 200 || src != "cache" || row["status"] != "confirmed" || row["customer_id"] != customer {
		t.Fatalf("get_order %s-o2: %d from %q: %v", ns, code, src, row)
	}
	// Expired from the cache (the seed's hour): the index answers and the
	// cache is filled again.
	if err := rdb.Del(context.Background(), "order:"+ns+"-o3").Err(); err != nil {
		t.Fatal(err)
	}
	if code, src, row = get(ns+"-o3", pos); code != 200 || src != "search" || row["total_items"] != float64(3) {
		t.Fatalf("get_order %s-o3 after eviction: %d from %q: %v", ns, code, src, row)
	}
	if code, src, _ = get(ns+"-o3", pos); code != 200 || src != "cache" {
		t.Fatalf("get_order %s-o3 after the fill: %d from %q", ns, code, src)
	}

	// search_orders, from the index: newest first, two at a time.
	searchOrders := func(position string) []string {
		t.Helper()
		var got []string
		cursor := ""
		for page := 0; page < 10; page++ {
			q := "/v1/views/orders?index=customer_id&eq=" + customer + "&order=desc&limit=2&position=" + position
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			req, _ := http.NewRequest("GET", s.url+q, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var res struct {
				Rows []struct {
					Key string
					Row struct{ Status string }
				}
				Next string
			}
			decodeJSON(t, resp, &res)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("X-Strata-Source") != "search" {
				t.Fatalf("search_orders page %d: %d from %q", page, resp.StatusCode, resp.Header.Get("X-Strata-Source"))
			}
			for _, r := range res.Rows {
				got = append(got, strings.TrimPrefix(r.Key, ns+"-")+":"+r.Row.Status)
			}
			if res.Next == "" {
				return got
			}
			cursor = res.Next
		}
		t.Fatalf("search_orders: more than 10 pages: %v", got)
		return nil
	}
	if got, want := strings.Join(searchOrders(pos2), " "), "o5:pending o4:pending o3:pending o2:confirmed o1:pending"; got != want {
		t.Fatalf("search_orders: %s, want %s", got, want)
	}

	// The index's server goes away: commands go on, the view waits for it.
	proxy.Stop()
	for i := 6; i <= 8; i++ {
		pos = create(i)
	}
	var checks map[string]string
	eventually(t, 30*time.Second, func() bool {
		var code int
		code, checks = s.readyz(t)
		return code == 503 && strings.Contains(checks["projection orders"], "sink search is down")
	}, func() string { return fmt.Sprintf("/readyz with the index away: %v", checks) })
	proxy.Start(t)
	eventually(t, 60*time.Second, func() bool {
		var code int
		code, checks = s.readyz(t)
		return code == 200
	}, func() string { return fmt.Sprintf("/readyz with the index back: %v", checks) })
	if got, want := strings.Join(searchOrders(pos), " "), "o8:pending o7:pending o6:pending o5:pending o4:pending o3:pending o2:confirmed o1:pending"; got != want {
		t.Fatalf("search_orders after the index came back: %s, want %s (nothing skipped)", got, want)
	}
	if e, hit, err := cached.Get(context.Background(), ns+"-o7"); err != nil || !hit || e.Version != 1 {
		t.Fatalf("the cache after the index came back: %+v %v %v", e, hit, err)
	}
}

func decodeJSON(t *testing.T, resp *http.Response, out any) {
	t.Helper()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %v", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, err)
	}
}
