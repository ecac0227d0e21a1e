package order_test

import (
	"testing"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/aggregates/order"
)

// BenchmarkDecide decides one command through order.Type, as the runtime
// does (Validate, then Decide), against a pending order of 20 lines.
func BenchmarkDecide(b *testing.B) {
	pending := fold(order.Created{CustomerID: "cust-1", Items: items(20)})
	for _, bc := range []struct {
		name   string
		state  order.State
		cmd    aggregates.Command
		reject bool
	}{
		{"CreateOrder", order.State{}, order.Create{CustomerID: "cust-1", Items: items(20)}, false},
		{"AddItem/new", pending, order.AddItem{SKU: "NEW", Qty: 2, UnitPrice: 300}, false},
		{"AddItem/more", pending, order.AddItem{SKU: "SKU-019", Qty: 2, UnitPrice: 100}, false},
		{"RemoveItem", pending, order.RemoveItem{SKU: "SKU-019"}, false},
		{"ConfirmOrder", pending, order.Confirm{}, false},
		{"ShipOrder/rejected", pending, order.Ship{Carrier: "DHL"}, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, err := order.Type.Decide(bc.state, bc.cmd, now)
				if (err != nil) != bc.reject {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
		})
	}
}

// BenchmarkEvolve folds one event into a pending order of 20 lines: the
// item events copy the lines.
func BenchmarkEvolve(b *testing.B) {
	pending := fold(order.Created{CustomerID: "cust-1", Items: items(20)})
	for _, bc := range []struct {
		name string
		ev   aggregates.Event
	}{
		{"ItemAdded", order.ItemAdded{SKU: "NEW", Qty: 2, UnitPrice: 300}},
		{"ItemRemoved", order.ItemRemoved{SKU: "SKU-010"}},
		{"OrderConfirmed", order.Confirmed{ConfirmedAt: 1}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = order.Type.Evolve(pending, bc.ev)
			}
		})
	}
}
