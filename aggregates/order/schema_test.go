package order_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/aggregates/order"
	"github.com/strata-es/strata/schemas"
)

// The domain package imports no Avro; this external test checks its types
// against schemas/order.

func TestBind(t *testing.T) {
	if err := schemas.Default().Bind(order.Type); err != nil {
		t.Fatal(err)
	}
}

// TestRoundTrip encodes a value of every type with every field set, which
// Bind's zero values do not, and reads it back.
func TestRoundTrip(t *testing.T) {
	cat := schemas.Default()
	lines := []order.Item{{SKU: "A", Qty: 2, UnitPrice: 500}, {SKU: "B-ü", Qty: order.MaxQty, UnitPrice: 1 << 40}}
	for subject, v := range map[string]any{
		"CreateOrder":    order.Create{CustomerID: "cust-1", Items: lines},
		"AddItem":        order.AddItem{SKU: "C", Qty: 3, UnitPrice: 250},
		"RemoveItem":     order.RemoveItem{SKU: "A"},
		"ConfirmOrder":   order.Confirm{},
		"CancelOrder":    order.Cancel{Reason: "changed my mind"},
		"ShipOrder":      order.Ship{Carrier: "DHL", Tracking: "JD0001"},
		"OrderCreated":   order.Created{CustomerID: "cust-1", Items: lines, CreatedAt: 1767323045123},
		"ItemAdded":      order.ItemAdded{SKU: "C", Qty: 3, UnitPrice: 250},
		"ItemRemoved":    order.ItemRemoved{SKU: "A"},
		"OrderConfirmed": order.Confirmed{ConfirmedAt: 1767323045123},
		"OrderCancelled": order.Cancelled{Reason: "changed my mind", CancelledAt: -1},
		"OrderShipped":   order.Shipped{Carrier: "DHL", Tracking: "JD0001", ShippedAt: 1767323045123},
		"state": order.State{Status: order.StatusConfirmed, CustomerID: "cust-1", Items: lines,
			Total: 1000 + order.MaxQty<<40, CreatedAt: 1767323045123},
	} {
		b, err := cat.Encode("order/"+subject, v)
		if subject == "state" {
			b, err = cat.Local().Encode("order/"+subject, v)
		}
		if err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
		got := reflect.New(reflect.TypeOf(v))
		if _, err := cat.DecodeSubject("order/"+subject, b, got.Interface()); err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
		if !reflect.DeepEqual(got.Elem().Interface(), v) {
			t.Errorf("%s: got %+v, want %+v", subject, got.Elem().Interface(), v)
		}
	}
}

// TestSubjects: every schema under schemas/order belongs to a command, an
// event or the state, and passes the compatibility gate.
func TestSubjects(t *testing.T) {
	cat := schemas.Default()
	known := map[string]bool{"state": true}
	for _, n := range append(order.Type.CommandTypes(), order.Type.EventTypes()...) {
		known[n] = true
	}
	n := 0
	for _, s := range cat.Subjects() {
		if s.Dir != order.Name {
			continue
		}
		n++
		if !known[s.Name] {
			t.Errorf("schemas/%s has no Go type in package order", s)
		}
	}
	if n != len(known) {
		t.Errorf("%d subjects under schemas/order, want %d", n, len(known))
	}
	for _, v := range cat.Check(schemas.UpcastedBy(order.Type)) {
		if strings.HasPrefix(v.Subject, order.Name+"/") {
			t.Error(v)
		}
	}
	var _ aggregates.Type = order.Type
}
