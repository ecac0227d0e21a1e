package order

import "github.com/strata-es/strata/aggregates"

// evolve folds ev into s. It copies Items before changing them: s may
// share its backing array with states the caller keeps.
func evolve(s State, ev aggregates.Event) State {
	switch e := ev.(type) {
	case Created:
		s.Status, s.CustomerID, s.CreatedAt = StatusPending, e.CustomerID, e.CreatedAt
		s.Items = append([]Item(nil), e.Items...)
		s.Total = 0
		for _, it := range s.Items {
			s.Total += int64(it.Qty) * it.UnitPrice
		}
	case ItemAdded:
		items := make([]Item, len(s.Items), len(s.Items)+1)
		copy(items, s.Items)
		if i := s.find(e.SKU); i >= 0 {
			items[i].Qty += e.Qty
		} else {
			items = append(items, Item(e))
		}
		s.Items = items
		s.Total += int64(e.Qty) * e.UnitPrice
	case ItemRemoved:
		i := s.find(e.SKU)
		if i < 0 {
			break
		}
		gone := s.Items[i]
		items := make([]Item, 0, len(s.Items)-1)
		s.Items = append(append(items, s.Items[:i]...), s.Items[i+1:]...)
		s.Total -= int64(gone.Qty) * gone.UnitPrice
	case Confirmed:
		s.Status = StatusConfirmed
	case Cancelled:
		s.Status = StatusCancelled
	case Shipped:
		s.Status = StatusShipped
	}
	return s
}
