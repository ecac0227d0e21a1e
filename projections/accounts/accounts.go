// Package accounts is the accounts view: one row per bank account with its
// owner, balance and the version of the last event applied.
package accounts

import (
	"time"

	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/projections"
)

// Row is an account as the view shows it.
type Row struct {
	ID        string    `json:"id" avro:"id"`
	Owner     string    `json:"owner" avro:"owner"`
	Balance   int64     `json:"balance" avro:"balance"`
	Currency  string    `json:"currency" avro:"currency"`
	Version   int64     `json:"version" avro:"version"`
	OpenedAt  time.Time `json:"opened_at" avro:"opened_at"`
	UpdatedAt time.Time `json:"updated_at" avro:"updated_at"`
}

// Projection maintains the accounts view.
var Projection = projections.Projection{
	Name:       "accounts",
	Aggregates: []string{account.Name},
	Apply:      apply,
	// Published on strata.view.accounts, in Avro with
	// schemas/views/accounts.v<N>.avsc.
	Publish: true,
	Row:     Row{},
}

func apply(tx projections.Tx, ev projections.Event) error {
	var row Row
	if _, err := tx.Get(ev.AggregateID, &row); err != nil {
		return err
	}
	switch e := ev.Data.(type) {
	case account.Opened:
		row = Row{ID: ev.AggregateID, Owner: e.Holder, Balance: e.InitialBalance, Currency: e.Currency, OpenedAt: ev.Timestamp}
	case account.Deposited:
		row.Balance += e.Amount
	case account.Withdrawn:
		row.Balance -= e.Amount
	default:
		return nil
	}
	row.Version, row.UpdatedAt = int64(ev.Version), ev.Timestamp
	return tx.Put(ev.AggregateID, row)
}
