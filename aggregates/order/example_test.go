package order_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/aggregates/order"
)

// Example runs an order through its life as the runtime does: Decide each
// command against the state, Evolve each event into it.
func Example() {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	state := order.Type.NewState()
	for _, cmd := range []aggregates.Command{
		order.Create{CustomerID: "cust-1", Items: []order.Item{{SKU: "A", Qty: 2, UnitPrice: 500}}},
		order.AddItem{SKU: "B", Qty: 1, UnitPrice: 1250},
		order.Ship{Carrier: "DHL"},
		order.AddItem{SKU: "C", Qty: 0, UnitPrice: 10},
		order.Confirm{},
		order.Ship{Carrier: "DHL", Tracking: "JD0001"},
	} {
		events, err := order.Type.Decide(state, cmd, now)
		switch {
		case errors.Is(err, aggregates.ErrRejected):
			fmt.Printf("%s rejected: %v\n", cmd.CommandType(), err)
		case errors.Is(err, aggregates.ErrInvalid):
			fmt.Printf("%s invalid: %v\n", cmd.CommandType(), err)
		}
		for _, ev := range events {
			data, _ := json.Marshal(ev)
			fmt.Printf("%s → %s %s\n", cmd.CommandType(), ev.EventType(), data)
			state = order.Type.Evolve(state, ev)
		}
		now = now.Add(time.Minute)
	}
	s := state.(order.State)
	fmt.Printf("%s, %d lines, total %d\n", s.Status, len(s.Items), s.Total)
	// Output:
	// CreateOrder → OrderCreated {"customer_id":"cust-1","items":[{"sku":"A","qty":2,"unit_price":500}],"created_at":1767323045000}
	// AddItem → ItemAdded {"sku":"B","qty":1,"unit_price":1250}
	// ShipOrder rejected: cannot ship a pending order: confirm it first
	// AddItem invalid: qty of "C" must be 1 to 10000, got 0
	// ConfirmOrder → OrderConfirmed {"confirmed_at":1767323285000}
	// ShipOrder → OrderShipped {"carrier":"DHL","tracking":"JD0001","shipped_at":1767323345000}
	// shipped, 2 lines, total 2250
}
