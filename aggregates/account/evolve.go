package account

import "github.com/strata-es/strata/aggregates"

func evolve(s State, ev aggregates.Event) State {
	switch e := ev.(type) {
	case Opened:
		s.Open, s.Owner, s.Balance, s.Currency = true, e.Holder, e.InitialBalance, e.Currency
	case Deposited:
		s.Balance += e.Amount
	case Withdrawn:
		s.Balance -= e.Amount
	}
	return s
}
