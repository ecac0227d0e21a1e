package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/aggregates/order"
)

// converge is how long an instance may take, after the run, to serve
// what the topics hold.
const converge = 90 * time.Second

// Expected view rows, recomputed from the events topic by the soak's own
// folds (not the projections' code): the fields a view must get right.
type (
	accountRow struct {
		ID       string `json:"id"`
		Owner    string `json:"owner"`
		Balance  int64  `json:"balance"`
		Currency string `json:"currency"`
		Version  int64  `json:"version"`
	}
	orderRow struct {
		ID         string       `json:"id"`
		CustomerID string       `json:"customer_id"`
		Status     string       `json:"status"`
		Items      []order.Item `json:"items"`
		TotalItems int64        `json:"total_items"`
		Total      int64        `json:"total"`
		CreatedAt  time.Time    `json:"created_at"`
		Version    int64        `json:"version"`
	}
	customerRow struct {
		CustomerID string `json:"customer_id"`
		Orders     int    `json:"orders"`
		OpenOrders int    `json:"open_orders"`
		Spent      int64  `json:"spent"`
		Accounts   int    `json:"accounts"`
		Balance    int64  `json:"balance"`
	}
)

// views is the expected content of every view.
type views struct {
	accounts  map[string]accountRow
	orders    map[string]orderRow
	customers map[string]customerRow
	// byCustomer lists each customer's orders, as the orders view's
	// customer_id index must.
	byCustomer map[string][]string
}

// expectedViews folds the histories into the rows the views must hold.
func (m *model) expectedViews() *views {
	v := &views{accounts: map[string]accountRow{}, orders: map[string]orderRow{}, customers: map[string]customerRow{}, byCustomer: map[string][]string{}}
	for _, h := range m.hist {
		var (
			a     accountRow
			o     orderRow
			lines map[string]int64
		)
		var owner string
		for _, e := range h.events {
			for _, ev := range e.events {
				switch ev := ev.(type) {
				case account.Opened:
					a = accountRow{ID: h.id, Owner: ev.Holder, Balance: ev.InitialBalance, Currency: ev.Currency}
					owner = ev.Holder
					c := v.customers[owner]
					c.CustomerID, c.Accounts, c.Balance = owner, c.Accounts+1, c.Balance+ev.InitialBalance
					v.customers[owner] = c
				case account.Deposited:
					a.Balance += ev.Amount
					c := v.customers[owner]
					c.Balance += ev.Amount
					v.customers[owner] = c
				case account.Withdrawn:
					a.Balance -= ev.Amount
					c := v.customers[owner]
					c.Balance -= ev.Amount
					v.customers[owner] = c
				case order.Created:
					o = orderRow{ID: h.id, CustomerID: ev.CustomerID, Status: "pending", Items: slices.Clone(ev.Items), CreatedAt: time.UnixMilli(ev.CreatedAt).UTC()}
					owner = ev.CustomerID
					lines = map[string]int64{}
					for _, it := range ev.Items {
						lines[it.SKU] += int64(it.Qty) * it.UnitPrice
					}
					c := v.customers[owner]
					c.CustomerID, c.Orders, c.OpenOrders = owner, c.Orders+1, c.OpenOrders+1
					v.customers[owner] = c
					v.byCustomer[owner] = append(v.byCustomer[owner], h.id)
				case order.ItemAdded:
					i := slices.IndexFunc(o.Items, func(it order.Item) bool { return it.SKU == ev.SKU })
					if i >= 0 {
						o.Items[i].Qty += ev.Qty
					} else {
						o.Items = append(o.Items, order.Item(ev))
					}
					lines[ev.SKU] += int64(ev.Qty) * ev.UnitPrice
				case order.ItemRemoved:
					o.Items = slices.DeleteFunc(o.Items, func(it order.Item) bool { return it.SKU == ev.SKU })
					delete(lines, ev.SKU)
				case order.Confirmed:
					o.Status = "confirmed"
				case order.Cancelled:
					o.Status = "cancelled"
					c := v.customers[owner]
					c.OpenOrders--
					v.customers[owner] = c
				case order.Shipped:
					o.Status = "shipped"
					c := v.customers[owner]
					c.OpenOrders--
					for _, t := range lines {
						c.Spent += t
					}
					v.customers[owner] = c
				}
			}
			a.Version, o.Version = int64(e.version), int64(e.version)
		}
		switch h.agg {
		case account.Name:
			v.accounts[h.id] = a
		case order.Name:
			o.TotalItems, o.Total = 0, 0
			for _, it := range o.Items {
				o.TotalItems += int64(it.Qty)
				o.Total += int64(it.Qty) * it.UnitPrice
			}
			v.orders[h.id] = o
		}
	}
	return v
}

// checkInstances queries every instance, in parallel, for every aggregate
// and view row and compares with the replay of the events topic.
func (s *soak) checkInstances(ctx context.Context, m *model) {
	v := m.expectedViews()
	// Aggregates the clients addressed that have no events (an order
	// whose creation was refused, an account never opened) must not be
	// served.
	var absent []string
	for _, sc := range s.ledger.all() {
		if m.hist[sc.cmd.key()] == nil && !slices.Contains(absent, sc.cmd.key()) {
			absent = append(absent, sc.cmd.key())
		}
	}
	var wg sync.WaitGroup
	for _, in := range s.cluster.inst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.checkInstance(ctx, in, m, v, absent)
		}()
	}
	wg.Wait()
	s.stats.checkedAggregates.Store(int64(len(m.hist)))
	for _, in := range s.cluster.inst {
		s.checkStatus(ctx, in)
	}
}

// checkStatus reports the partitions an instance stopped applying (an
// event its processor or its follower could not apply): such a node no
// longer keeps their state current, whatever it serves at the end.
func (s *soak) checkStatus(ctx context.Context, in *instance) {
	hc := &http.Client{Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	var st struct {
		Processors []struct {
			Aggregate string            `json:"aggregate"`
			Failed    map[string]string `json:"failed"`
		} `json:"processors"`
	}
	if code, err := getJSON(ctx, hc, in.url+"/v1/status", &st); err != nil || code != http.StatusOK {
		s.problems.add(probInconsistent, "%s: GET /v1/status answered %d (%v)", in.name, code, err)
		return
	}
	for _, p := range st.Processors {
		for _, part := range slices.Sorted(maps.Keys(p.Failed)) {
			s.problems.add(probInconsistent, "%s: %s partition %s stopped: %s", in.name, p.Aggregate, part, p.Failed[part])
		}
	}
}

func (s *soak) checkInstance(ctx context.Context, in *instance, m *model, v *views, absent []string) {
	hc := &http.Client{Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(converge)
	// poll GETs path into a fresh value until done says it is current,
	// the deadline passes (the last answer is then checked as is) or the
	// answer is not 200 for long.
	poll := func(path string, fresh func() any, done func(any) bool) (any, int) {
		for {
			got := fresh()
			code, err := getJSON(ctx, hc, in.url+path, got)
			if err == nil && code == http.StatusOK && done(got) {
				return got, code
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				if err != nil {
					return nil, 0
				}
				return got, code
			}
			sleepCtx(ctx, 200*time.Millisecond)
		}
	}
	name := in.name
	work := make(chan func(), 64)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range work {
				f()
			}
		}()
	}
	for _, k := range slices.Sorted(maps.Keys(m.hist)) {
		h := m.hist[k]
		work <- func() {
			type served struct {
				Version uint64          `json:"version"`
				State   json.RawMessage `json:"state"`
			}
			got, code := poll("/v1/aggregates/"+k, func() any { return &served{} }, func(g any) bool { return g.(*served).Version >= h.last() })
			if code != http.StatusOK {
				s.problems.add(probInconsistent, "%s: GET /v1/aggregates/%s answered %d; the events topic has %d events", name, k, code, h.last())
				return
			}
			sv := got.(*served)
			want := h.states[len(h.states)-1]
			switch {
			case sv.Version != h.last():
				kind := probInconsistent
				if sv.Version < h.last() {
					kind = probLost
				}
				s.problems.add(kind, "%s serves %s at version %d; the events topic has %d events", name, k, sv.Version, h.last())
			case want == nil:
				// A gap or an unreadable event, reported already.
			default:
				wb, _ := json.Marshal(want)
				if !jsonEqual(wb, sv.State) {
					s.problems.add(probInconsistent, "%s serves %s v%d as %s; a replay of the events topic gives %s", name, k, sv.Version, sv.State, wb)
				}
			}
		}
	}
	for _, k := range absent {
		work <- func() {
			var got json.RawMessage
			if code, _ := getJSON(ctx, hc, in.url+"/v1/aggregates/"+k, &got); code != http.StatusNotFound {
				s.problems.add(probInconsistent, "%s: GET /v1/aggregates/%s answered %d %s; it has no events, want 404", name, k, code, got)
			}
		}
	}
	for id, want := range v.accounts {
		work <- func() {
			got, code := poll("/v1/views/accounts/"+id, func() any { return &accountRow{} }, func(g any) bool { return g.(*accountRow).Version >= want.Version })
			if code != http.StatusOK {
				s.problems.add(probInconsistent, "%s: view accounts/%s answered %d", name, id, code)
			} else if *got.(*accountRow) != want {
				s.problems.add(viewKind(got.(*accountRow).Version, want.Version), "%s: view accounts/%s is %+v; the events topic gives %+v", name, id, *got.(*accountRow), want)
			}
		}
	}
	for id, want := range v.orders {
		work <- func() {
			got, code := poll("/v1/views/orders/"+id, func() any { return &orderRow{} }, func(g any) bool { return g.(*orderRow).Version >= want.Version })
			if code != http.StatusOK {
				s.problems.add(probInconsistent, "%s: view orders/%s answered %d", name, id, code)
				return
			}
			g := got.(*orderRow)
			if !reflect.DeepEqual(normItems(*g), normItems(want)) {
				s.problems.add(viewKind(g.Version, want.Version), "%s: view orders/%s is %+v; the events topic gives %+v", name, id, *g, want)
			}
		}
	}
	for id, want := range v.customers {
		work <- func() {
			got, code := poll("/v1/views/customers/"+id, func() any { return &customerRow{} }, func(g any) bool { return *g.(*customerRow) == want })
			if code != http.StatusOK {
				s.problems.add(probInconsistent, "%s: view customers/%s answered %d", name, id, code)
			} else if *got.(*customerRow) != want {
				s.problems.add(probInconsistent, "%s: view customers/%s is %+v; the events topic gives %+v", name, id, *got.(*customerRow), want)
			}
		}
	}
	for cust, ids := range v.byCustomer {
		work <- func() { s.checkIndex(ctx, hc, in, cust, ids, v) }
	}
	close(work)
	wg.Wait()
}

// checkIndex reads a customer's orders through the orders view's index,
// newest first, page by page: the same orders as the events topic, each
// once, by creation time descending.
func (s *soak) checkIndex(ctx context.Context, hc *http.Client, in *instance, cust string, want []string, v *views) {
	var got []orderRow
	cursor := ""
	for page := 0; ; page++ {
		q := url.Values{"index": {"customer_id"}, "eq": {cust}, "order": {"desc"}, "limit": {"7"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var p struct {
			Rows []struct {
				Key string   `json:"key"`
				Row orderRow `json:"row"`
			} `json:"rows"`
			Next string `json:"next"`
		}
		code, err := getJSON(ctx, hc, in.url+"/v1/views/orders?"+q.Encode(), &p)
		if err != nil || code != http.StatusOK {
			s.problems.add(probInconsistent, "%s: orders of %s through the index: page %d answered %d %v", in.name, cust, page, code, err)
			return
		}
		for _, r := range p.Rows {
			got = append(got, r.Row)
		}
		if cursor = p.Next; cursor == "" || page > 1000 {
			break
		}
	}
	var ids []string
	for i, r := range got {
		ids = append(ids, r.ID)
		if i > 0 && r.CreatedAt.After(got[i-1].CreatedAt) {
			s.problems.add(probInconsistent, "%s: orders of %s through the index, newest first: %s (created %s) after %s (created %s)",
				in.name, cust, r.ID, r.CreatedAt, got[i-1].ID, got[i-1].CreatedAt)
		}
	}
	slices.Sort(ids)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		s.problems.add(probInconsistent, "%s: orders of %s through the index are %v; the events topic has %v", in.name, cust, ids, want)
	}
}

// viewKind is lost when a view row is behind the events, inconsistent
// otherwise.
func viewKind(got, want int64) int {
	if got < want {
		return probLost
	}
	return probInconsistent
}

// normItems makes empty and missing item lists compare equal.
func normItems(o orderRow) orderRow {
	if len(o.Items) == 0 {
		o.Items = nil
	}
	o.CreatedAt = o.CreatedAt.UTC()
	return o
}

// jsonEqual compares two JSON documents, taking null, [] and {} as equal
// (a replayed state and a decoded one differ in nothing else).
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return looseEqual(x, y)
}

func looseEqual(x, y any) bool {
	empty := func(v any) bool {
		switch v := v.(type) {
		case nil:
			return true
		case []any:
			return len(v) == 0
		case map[string]any:
			return len(v) == 0
		}
		return false
	}
	if empty(x) && empty(y) {
		return true
	}
	switch x := x.(type) {
	case map[string]any:
		ym, ok := y.(map[string]any)
		if !ok {
			return false
		}
		for k := range x {
			if !looseEqual(x[k], ym[k]) {
				return false
			}
		}
		for k := range ym {
			if _, ok := x[k]; !ok && !empty(ym[k]) {
				return false
			}
		}
		return true
	case []any:
		ys, ok := y.([]any)
		if !ok || len(x) != len(ys) {
			return false
		}
		for i := range x {
			if !looseEqual(x[i], ys[i]) {
				return false
			}
		}
		return true
	}
	return fmt.Sprint(x) == fmt.Sprint(y)
}
