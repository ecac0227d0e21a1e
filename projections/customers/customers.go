// Package customers is a view across aggregates: per customer, their
// orders (from the order events) and their accounts (from the account
// events, the account holder being the customer).
package customers

import (
	"time"

	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/aggregates/order"
	"github.com/strata-es/strata/projections"
)

// Row summarizes one customer.
type Row struct {
	CustomerID string    `json:"customer_id"`
	Orders     int       `json:"orders"`
	OpenOrders int       `json:"open_orders"` // pending or confirmed
	Spent      int64     `json:"spent"`       // total of shipped orders
	Accounts   int       `json:"accounts"`
	Balance    int64     `json:"balance"` // sum over the customer's accounts
	UpdatedAt  time.Time `json:"updated_at"`
}

// Projection maintains the customers view.
var Projection = projections.Projection{
	Name:       "customers",
	Aggregates: []string{account.Name, order.Name},
	Apply:      apply,
}

// link is the projection's own memory of which customer an account or an
// order belongs to, and the order's lines (SKU → qty × unit price).
type link struct {
	Customer string           `json:"customer"`
	Lines    map[string]int64 `json:"lines,omitempty"`
}

func apply(tx projections.Tx, ev projections.Event) error {
	var l link
	key := ev.Aggregate + "/" + ev.AggregateID
	if _, err := tx.GetState(key, &l); err != nil {
		return err
	}
	switch e := ev.Data.(type) {
	case account.Opened:
		l.Customer = e.Holder
	case order.Created:
		l.Customer = e.CustomerID
	}
	if l.Customer == "" {
		return nil // an event of an aggregate whose creation this view never saw
	}
	var row Row
	if _, err := tx.Get(l.Customer, &row); err != nil {
		return err
	}
	row.CustomerID = l.Customer
	switch e := ev.Data.(type) {
	case account.Opened:
		row.Accounts++
		row.Balance += e.InitialBalance
	case account.Deposited:
		row.Balance += e.Amount
	case account.Withdrawn:
		row.Balance -= e.Amount
	case order.Created:
		row.Orders++
		row.OpenOrders++
		l.Lines = map[string]int64{}
		for _, it := range e.Items {
			l.Lines[it.SKU] += int64(it.Qty) * it.UnitPrice
		}
	case order.ItemAdded:
		if l.Lines == nil {
			l.Lines = map[string]int64{}
		}
		l.Lines[e.SKU] += int64(e.Qty) * e.UnitPrice
	case order.ItemRemoved:
		delete(l.Lines, e.SKU)
	case order.Cancelled:
		row.OpenOrders--
	case order.Shipped:
		row.OpenOrders--
		for _, total := range l.Lines {
			row.Spent += total
		}
	default:
		return nil
	}
	row.UpdatedAt = ev.Timestamp.UTC()
	if err := tx.PutState(key, l); err != nil {
		return err
	}
	return tx.Put(l.Customer, row)
}
