package order_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/aggregates/aggregatetest"
	"github.com/strata-es/strata/aggregates/order"
)

func TestScenarios(t *testing.T) {
	aggregatetest.Run(t, order.Type, "testdata/scenarios.txt")
}

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fold evolves the initial state through events.
func fold(events ...aggregates.Event) order.State {
	s := order.Decider.Initial
	for _, ev := range events {
		s = order.Decider.Evolve(s, ev)
	}
	return s
}

// items returns n lines with distinct SKUs.
func items(n int) []order.Item {
	out := make([]order.Item, n)
	for i := range out {
		out[i] = order.Item{SKU: fmt.Sprintf("SKU-%03d", i), Qty: 1, UnitPrice: 100}
	}
	return out
}

// TestLimits covers the bounds too long to write as scenarios.
func TestLimits(t *testing.T) {
	full := fold(order.Created{CustomerID: "c", Items: items(order.MaxItems)})
	for _, tc := range []struct {
		name  string
		state order.State
		cmd   aggregates.Command
		want  error  // nil, ErrInvalid or ErrRejected
		msg   string // in the error
	}{
		{"MaxItems lines", order.State{}, order.Create{CustomerID: "c", Items: items(order.MaxItems)}, nil, ""},
		{"one line too many", order.State{}, order.Create{CustomerID: "c", Items: items(order.MaxItems + 1)}, aggregates.ErrInvalid, "at most 100 items, got 101"},
		{"a new line on a full order", full, order.AddItem{SKU: "NEW", Qty: 1, UnitPrice: 1}, aggregates.ErrRejected, "order has 100 items, the most it can have"},
		{"more of a line on a full order", full, order.AddItem{SKU: "SKU-007", Qty: 5, UnitPrice: 100}, nil, ""},
		{"a SKU of MaxSKULength", order.State{}, order.Create{CustomerID: "c", Items: []order.Item{{SKU: strings.Repeat("x", order.MaxSKULength), Qty: 1}}}, nil, ""},
		{"a customer_id longer than an ID", order.State{}, order.Create{CustomerID: strings.Repeat("c", aggregates.MaxIDLength+1), Items: items(1)}, aggregates.ErrInvalid, "longer than the limit"},
		{"a reason of MaxReasonLength", full, order.Cancel{Reason: strings.Repeat("r", order.MaxReasonLength)}, nil, ""},
		{"a reason too long", full, order.Cancel{Reason: strings.Repeat("r", order.MaxReasonLength+1)}, aggregates.ErrInvalid, "reason is 501 bytes, longer than 500"},
		{"a carrier too long", full, order.Ship{Carrier: strings.Repeat("c", order.MaxCarrierLength+1)}, aggregates.ErrInvalid, "carrier is 65 bytes, longer than 64"},
		{"a tracking number too long", full, order.Ship{Carrier: "DHL", Tracking: strings.Repeat("t", order.MaxTrackingLength+1)}, aggregates.ErrInvalid, "tracking is 129 bytes, longer than 128"},
		{"a SKU that is not UTF-8", full, order.RemoveItem{SKU: "\xff"}, aggregates.ErrInvalid, "sku is not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, err := order.Type.Decide(tc.state, tc.cmd, now)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("err = %v", err)
			case tc.want == nil && len(events) != 1:
				t.Fatalf("events = %v", events)
			case tc.want != nil && (!errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg)):
				t.Fatalf("err = %v, want %v with %q", err, tc.want, tc.msg)
			}
		})
	}
}

// TestEvolveKeepsOlderStates: a state stays as it was when newer states
// are folded from it, whatever the capacity of its Items.
func TestEvolveKeepsOlderStates(t *testing.T) {
	ev := order.Created{CustomerID: "c", Items: []order.Item{{SKU: "A", Qty: 2, UnitPrice: 500}, {SKU: "B", Qty: 1, UnitPrice: 100}}}
	base := fold(ev)
	ev.Items[0].Qty = 99 // the event's slice is not the state's
	base.Items = append(make([]order.Item, 0, 8), base.Items...)
	want := order.State{Status: order.StatusPending, CustomerID: "c", Total: 1100,
		Items: []order.Item{{SKU: "A", Qty: 2, UnitPrice: 500}, {SKU: "B", Qty: 1, UnitPrice: 100}}}
	if !reflect.DeepEqual(base, want) {
		t.Fatalf("base = %+v, want %+v", base, want)
	}
	c := order.Decider.Evolve(base, order.ItemAdded{SKU: "C", Qty: 1, UnitPrice: 10})
	d := order.Decider.Evolve(base, order.ItemAdded{SKU: "D", Qty: 1, UnitPrice: 20})
	more := order.Decider.Evolve(base, order.ItemAdded{SKU: "A", Qty: 3, UnitPrice: 500})
	less := order.Decider.Evolve(base, order.ItemRemoved{SKU: "A"})
	if !reflect.DeepEqual(base, want) {
		t.Fatalf("base changed to %+v", base)
	}
	for _, tc := range []struct {
		got   order.State
		items string
		total int64
	}{
		{c, "[{A 2 500} {B 1 100} {C 1 10}]", 1110},
		{d, "[{A 2 500} {B 1 100} {D 1 20}]", 1120},
		{more, "[{A 5 500} {B 1 100}]", 2600},
		{less, "[{B 1 100}]", 100},
	} {
		if got := fmt.Sprint(tc.got.Items); got != tc.items || tc.got.Total != tc.total {
			t.Errorf("items %s total %d, want %s total %d", got, tc.got.Total, tc.items, tc.total)
		}
	}
}

// TestLifeCycle folds what Decide returns through a whole order.
func TestLifeCycle(t *testing.T) {
	var s any = order.Type.NewState()
	for i, cmd := range []aggregates.Command{
		order.Create{CustomerID: "cust-1", Items: []order.Item{{SKU: "A", Qty: 2, UnitPrice: 500}}},
		order.AddItem{SKU: "B", Qty: 1, UnitPrice: 1250},
		order.AddItem{SKU: "A", Qty: 1, UnitPrice: 500},
		order.AddItem{SKU: "C", Qty: 4, UnitPrice: 0},
		order.RemoveItem{SKU: "B"},
		order.Confirm{},
		order.Ship{Carrier: "DHL", Tracking: "JD0001"},
	} {
		events, err := order.Type.Decide(s, cmd, now.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatalf("%s: %v", cmd.CommandType(), err)
		}
		for _, ev := range events {
			s = order.Type.Evolve(s, ev)
		}
	}
	want := order.State{Status: order.StatusShipped, CustomerID: "cust-1", Total: 1500, CreatedAt: now.UnixMilli(),
		Items: []order.Item{{SKU: "A", Qty: 3, UnitPrice: 500}, {SKU: "C", Qty: 4}}}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("state = %+v, want %+v", s, want)
	}
}

func TestDecideTakesPointersAndUnknownCommands(t *testing.T) {
	s := fold(order.Created{CustomerID: "c", Items: items(1)})
	if events, err := order.Type.Decide(s, &order.Confirm{}, now); err != nil || len(events) != 1 {
		t.Fatalf("a pointer command: %v %v", events, err)
	}
	if _, err := order.Decider.Decide(s, other{}, now); !errors.Is(err, aggregates.ErrInvalid) {
		t.Fatalf("an unknown command: %v", err)
	}
}

type other struct{}

func (other) CommandType() string { return "Other" }
