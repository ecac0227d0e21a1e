package account

import (
	"math"
	"time"

	"github.com/strata-es/strata/aggregates"
)

func decide(s State, cmd aggregates.Command, _ time.Time) ([]aggregates.Event, error) {
	switch c := cmd.(type) {
	case Open:
		if s.Open {
			return nil, aggregates.Reject("account already exists (owner %q)", s.Owner)
		}
		currency := c.Currency
		if currency == "" {
			currency = DefaultCurrency
		}
		return []aggregates.Event{Opened{Holder: c.Owner, InitialBalance: c.InitialBalance, Currency: currency}}, nil
	case Deposit:
		if !s.Open {
			return nil, aggregates.Reject("account does not exist: open it first")
		}
		if s.Balance > math.MaxInt64-c.Amount {
			return nil, aggregates.Reject("deposit of %d would overflow the balance of %d", c.Amount, s.Balance)
		}
		return []aggregates.Event{Deposited(c)}, nil
	case Withdraw:
		if !s.Open {
			return nil, aggregates.Reject("account does not exist: open it first")
		}
		if c.Amount > s.Balance {
			return nil, aggregates.Reject("insufficient funds: balance %d, withdrawal %d", s.Balance, c.Amount)
		}
		return []aggregates.Event{Withdrawn(c)}, nil
	}
	return nil, aggregates.Invalid("account does not handle command %T", cmd)
}
