package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testSeedReadModel: the seed's get_order and search_orders — an order by
// ID, and the orders of a customer newest first, paged with a cursor — plus
// the customers view across orders and accounts, read after the writes
// with their position tokens.
func testSeedReadModel(t *testing.T, b *broker) {
	s := startNode(t, b, nodeOpts{ns: namespace(), dataDir: t.TempDir()})
	send := func(agg, id, typ, data string) string {
		t.Helper()
		var res map[string]any
		code := s.do(t, "POST", "/v1/commands/"+agg+"/"+id, fmt.Sprintf(`{"type":%q,"data":%s}`, typ, data), &res)
		if code != 200 {
			t.Fatalf("%s %s %s: %d %v", agg, id, typ, code, res)
		}
		return res["position"].(string)
	}
	for i := 1; i <= 5; i++ {
		send("order", fmt.Sprintf("o-%d", i), "CreateOrder", fmt.Sprintf(`{"customer_id":"c-42","items":[{"sku":"A","qty":%d,"unit_price":100}]}`, i))
		time.Sleep(3 * time.Millisecond) // distinct creation times
	}
	send("order", "o-x", "CreateOrder", `{"customer_id":"c-7","items":[{"sku":"B","qty":1,"unit_price":5}]}`)
	send("order", "o-2", "ConfirmOrder", `{}`)
	send("order", "o-2", "ShipOrder", `{"carrier":"DHL"}`)
	send("order", "o-4", "CancelOrder", `{"reason":"changed my mind"}`)
	send("account", "acc-c42", "OpenAccount", `{"owner":"c-42","initial_balance":100}`)
	pos := send("order", "o-5", "AddItem", `{"sku":"B","qty":1,"unit_price":50}`)

	// get_order
	var order struct {
		ID, Status string
		CustomerID string `json:"customer_id"`
		Total      int
		TotalItems int `json:"total_items"`
	}
	if code := s.do(t, "GET", "/v1/views/orders/o-5?position="+pos, "", &order); code != 200 ||
		order.CustomerID != "c-42" || order.Status != "pending" || order.Total != 550 || order.TotalItems != 6 {
		t.Fatalf("get_order o-5: %d %+v", code, order)
	}
	// search_orders: newest first, two at a time.
	var got []string
	cursor := ""
	for page := 0; ; page++ {
		var res struct {
			Rows []struct {
				Key string
				Row struct{ Status string }
			}
			Next string
		}
		url := "/v1/views/orders?index=customer_id&eq=c-42&order=desc&limit=2&position=" + pos
		if cursor != "" {
			url += "&cursor=" + cursor
		}
		if code := s.do(t, "GET", url, "", &res); code != 200 {
			t.Fatalf("search_orders page %d: %d", page, code)
		}
		for _, r := range res.Rows {
			got = append(got, r.Key+":"+r.Row.Status)
		}
		if res.Next == "" || page > 5 {
			break
		}
		cursor = res.Next
	}
	if want := "o-5:pending o-4:cancelled o-3:pending o-2:shipped o-1:pending"; strings.Join(got, " ") != want {
		t.Fatalf("orders of c-42, newest first: %v, want %s", got, want)
	}
	var asc struct{ Rows []struct{ Key string } }
	s.do(t, "GET", "/v1/views/orders?index=customer_id&eq=c-42&limit=1", "", &asc)
	if len(asc.Rows) != 1 || asc.Rows[0].Key != "o-1" {
		t.Fatalf("oldest first: %+v", asc)
	}
	// The customers view, across both aggregates.
	var cust struct {
		Orders     int
		OpenOrders int `json:"open_orders"`
		Spent      int
		Accounts   int
		Balance    int
	}
	if code := s.do(t, "GET", "/v1/views/customers/c-42?position="+pos, "", &cust); code != 200 ||
		cust.Orders != 5 || cust.OpenOrders != 3 || cust.Spent != 200 || cust.Accounts != 1 || cust.Balance != 100 {
		t.Fatalf("customer c-42: %d %+v", code, cust)
	}
	// Reads without a token say how far behind the view is.
	req, _ := http.NewRequest("GET", s.url+"/v1/views/orders/o-1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Strata-View-Lag") == "" {
		t.Error("no Strata-View-Lag header")
	}
	var st struct {
		Projections []struct {
			Name  string
			State string
			Lag   int
		}
	}
	eventually(t, 10*time.Second, func() bool {
		st.Projections = nil
		s.do(t, "GET", "/v1/projections", "", &st)
		caughtUp := len(st.Projections) == 3
		for _, p := range st.Projections {
			if p.State != "running" || p.Lag != 0 {
				caughtUp = false
			}
		}
		return caughtUp
	}, func() string { return fmt.Sprintf("projections not caught up with lag 0: %+v", st) })
	// Bad queries.
	for url, want := range map[string]string{
		"/v1/views/orders?index=status&eq=x": `no index "status"`,
		"/v1/views/orders?index=customer_id": "needs eq=",
		"/v1/views/orders?order=sideways":    "want asc or desc",
		"/v1/views/orders?limit=0":           "want 1 to 1000",
		"/v1/views/orders?cursor=%21%21":     "bad cursor",
	} {
		var e map[string]any
		if code := s.do(t, "GET", url, "", &e); code != 400 || !strings.Contains(fmt.Sprint(e["error"]), want) {
			t.Errorf("%s: %d %v, want 400 with %q", url, code, e, want)
		}
	}
}
