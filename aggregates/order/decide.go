package order

import (
	"time"

	"github.com/strata-es/strata/aggregates"
)

func decide(s State, cmd aggregates.Command, now time.Time) ([]aggregates.Event, error) {
	at := now.UnixMilli()
	switch c := cmd.(type) {
	case Create:
		if s.Exists() {
			return nil, aggregates.Reject("order already exists (status %s)", s.Status)
		}
		return []aggregates.Event{Created{CustomerID: c.CustomerID, Items: c.Items, CreatedAt: at}}, nil
	case AddItem:
		if err := changingItems(s, "add items to"); err != nil {
			return nil, err
		}
		return addItem(s, c)
	case RemoveItem:
		if err := changingItems(s, "remove items from"); err != nil {
			return nil, err
		}
		if s.find(c.SKU) < 0 {
			return nil, aggregates.Reject("sku %q is not on the order", c.SKU)
		}
		if len(s.Items) == 1 {
			return nil, aggregates.Reject("cannot remove %q, the order's only item: cancel the order instead", c.SKU)
		}
		return []aggregates.Event{ItemRemoved(c)}, nil
	case Confirm:
		switch s.Status {
		case "":
			return nil, notFound()
		case StatusConfirmed:
			return nil, aggregates.Reject("order is already confirmed")
		case StatusPending:
		default:
			return nil, aggregates.Reject("cannot confirm a %s order: only a pending order can be confirmed", s.Status)
		}
		// Unreachable through Decide, which never empties an order, but
		// the state is a fold of stored events, whatever wrote them.
		if len(s.Items) == 0 {
			return nil, aggregates.Reject("cannot confirm an order without items")
		}
		return []aggregates.Event{Confirmed{ConfirmedAt: at}}, nil
	case Cancel:
		switch s.Status {
		case "":
			return nil, notFound()
		case StatusCancelled:
			return nil, aggregates.Reject("order is already cancelled")
		case StatusShipped:
			return nil, aggregates.Reject("cannot cancel a shipped order")
		}
		return []aggregates.Event{Cancelled{Reason: c.Reason, CancelledAt: at}}, nil
	case Ship:
		switch s.Status {
		case "":
			return nil, notFound()
		case StatusShipped:
			return nil, aggregates.Reject("order is already shipped")
		case StatusPending:
			return nil, aggregates.Reject("cannot ship a pending order: confirm it first")
		case StatusConfirmed:
		default:
			return nil, aggregates.Reject("cannot ship a %s order", s.Status)
		}
		return []aggregates.Event{Shipped{Carrier: c.Carrier, Tracking: c.Tracking, ShippedAt: at}}, nil
	}
	return nil, aggregates.Invalid("order does not handle command %T", cmd)
}

func notFound() error { return aggregates.Reject("order does not exist: create it first") }

// changingItems says why the items of s cannot change, or nil.
func changingItems(s State, verb string) error {
	switch s.Status {
	case "":
		return notFound()
	case StatusPending:
		return nil
	}
	return aggregates.Reject("cannot %s a %s order: items change only while it is pending", verb, s.Status)
}

func addItem(s State, c AddItem) ([]aggregates.Event, error) {
	line, _ := Item(c).total() // Validate checked it fits
	if i := s.find(c.SKU); i >= 0 {
		have := s.Items[i]
		if have.UnitPrice != c.UnitPrice {
			return nil, aggregates.Reject("sku %q is on the order at unit_price %d, not %d: remove it and add it again to change its price",
				c.SKU, have.UnitPrice, c.UnitPrice)
		}
		if have.Qty > MaxQty-c.Qty {
			return nil, aggregates.Reject("sku %q would have qty %d, more than %d", c.SKU, have.Qty+c.Qty, MaxQty)
		}
	} else if len(s.Items) >= MaxItems {
		return nil, aggregates.Reject("order has %d items, the most it can have", len(s.Items))
	}
	if _, ok := add(s.Total, line); !ok {
		return nil, aggregates.Reject("adding %d × %d of %q would overflow the total of %d", c.Qty, c.UnitPrice, c.SKU, s.Total)
	}
	return []aggregates.Event{ItemAdded(c)}, nil
}
