package account

import "github.com/strata-es/strata/aggregates"

// Open opens a new account.
type Open struct {
	Owner          string `json:"owner" avro:"owner"`
	InitialBalance int64  `json:"initial_balance" avro:"initial_balance"`
}

// Deposit adds Amount to the balance.
type Deposit struct {
	Amount int64 `json:"amount" avro:"amount"`
}

// Withdraw takes Amount from the balance; the balance never goes below zero.
type Withdraw struct {
	Amount int64 `json:"amount" avro:"amount"`
}

func (Open) CommandType() string     { return "OpenAccount" }
func (Deposit) CommandType() string  { return "Deposit" }
func (Withdraw) CommandType() string { return "Withdraw" }

// MaxOwnerLength bounds the owner's name, in bytes.
const MaxOwnerLength = 200

func (c Open) Validate() error {
	switch {
	case c.Owner == "":
		return aggregates.Invalid("owner is required")
	case len(c.Owner) > MaxOwnerLength:
		return aggregates.Invalid("owner is %d bytes, longer than %d", len(c.Owner), MaxOwnerLength)
	case c.InitialBalance < 0:
		return aggregates.Invalid("initial_balance must be zero or more, got %d", c.InitialBalance)
	}
	return nil
}

func (c Deposit) Validate() error { return positive(c.Amount) }

func (c Withdraw) Validate() error { return positive(c.Amount) }

func positive(amount int64) error {
	if amount <= 0 {
		return aggregates.Invalid("amount must be greater than zero, got %d", amount)
	}
	return nil
}
