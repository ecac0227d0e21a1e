package account

import "github.com/strata-es/strata/aggregates"

// Name is the aggregate type's name: topics strata.account.*, URLs
// /v1/commands/account/{id}, schemas under schemas/account/.
const Name = "account"

// Decider is the account aggregate.
var Decider = aggregates.Decider[State]{
	Name:     Name,
	Commands: []aggregates.Command{Open{}, Deposit{}, Withdraw{}},
	Events:   []aggregates.Event{Opened{}, Deposited{}, Withdrawn{}},
	Decide:   decide,
	Evolve:   evolve,
	Upcasters: []aggregates.Upcaster{
		{Event: "MoneyWithdrawn", From: 1, Up: withdrawnInCents},
	},
}

// Type is Decider registered for the runtime.
var Type = aggregates.MustRegister(Decider)
