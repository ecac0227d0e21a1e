// Package orders is the seed's read model of orders: one row per order,
// and "the orders of a customer, newest first" through the customer_id
// index.
package orders

import (
	"fmt"
	"time"

	"github.com/strata-es/strata/aggregates/order"
	"github.com/strata-es/strata/projections"
)

// Row is an order as the view shows it.
type Row struct {
	ID         string       `json:"id" avro:"id"`
	CustomerID string       `json:"customer_id" avro:"customer_id"`
	Status     string       `json:"status" avro:"status"`
	Items      []order.Item `json:"items" avro:"items"`
	TotalItems int64        `json:"total_items" avro:"total_items"`
	Total      int64        `json:"total" avro:"total"`
	CreatedAt  time.Time    `json:"created_at" avro:"created_at"`
	UpdatedAt  time.Time    `json:"updated_at" avro:"updated_at"`
	Version    int64        `json:"version" avro:"version"`
}

// ByCustomer is the name of the index of orders by customer, newest first
// with order=desc.
const ByCustomer = "customer_id"

// Projection maintains the orders view.
var Projection = projections.Projection{
	Name:       "orders",
	Aggregates: []string{order.Name},
	Apply:      apply,
	Publish:    true,
	Row:        Row{},
	Indexes: []projections.Index{
		projections.IndexOn(ByCustomer, func(r Row) (string, string) {
			// Sorted by creation time, then ID: fixed-width milliseconds.
			return r.CustomerID, fmt.Sprintf("%020d", r.CreatedAt.UnixMilli())
		}).On("customer_id", "created_at"),
	},
}

func apply(tx projections.Tx, ev projections.Event) error {
	var row Row
	if _, err := tx.Get(ev.AggregateID, &row); err != nil {
		return err
	}
	switch e := ev.Data.(type) {
	case order.Created:
		row = Row{ID: ev.AggregateID, CustomerID: e.CustomerID, Status: "pending",
			Items: append([]order.Item(nil), e.Items...), CreatedAt: time.UnixMilli(e.CreatedAt).UTC()}
	case order.ItemAdded:
		merged := false
		for i := range row.Items {
			if row.Items[i].SKU == e.SKU {
				row.Items[i].Qty += e.Qty
				merged = true
			}
		}
		if !merged {
			row.Items = append(row.Items, order.Item{SKU: e.SKU, Qty: e.Qty, UnitPrice: e.UnitPrice})
		}
	case order.ItemRemoved:
		kept := row.Items[:0]
		for _, it := range row.Items {
			if it.SKU != e.SKU {
				kept = append(kept, it)
			}
		}
		row.Items = kept
	case order.Confirmed:
		row.Status = "confirmed"
	case order.Cancelled:
		row.Status = "cancelled"
	case order.Shipped:
		row.Status = "shipped"
	default:
		return nil
	}
	row.TotalItems, row.Total = 0, 0
	for _, it := range row.Items {
		row.TotalItems += int64(it.Qty)
		row.Total += int64(it.Qty) * it.UnitPrice
	}
	row.Version, row.UpdatedAt = int64(ev.Version), ev.Timestamp.UTC()
	return tx.Put(ev.AggregateID, row)
}
