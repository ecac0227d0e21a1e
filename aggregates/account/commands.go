package account

import "github.com/strata-es/strata/aggregates"

// Open opens a new account.
type Open struct {
	Owner          string `json:"owner" avro:"owner"`
	InitialBalance int64  `json:"initial_balance" avro:"initial_balance"`
	// Currency is an ISO 4217 code; empty means DefaultCurrency.
	Currency string `json:"currency,omitempty" avro:"currency"`
}

// DefaultCurrency is the currency of accounts opened without one, and of
// every account opened before currencies existed.
const DefaultCurrency = "EUR"

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
	case c.Currency != "" && !isCurrency(c.Currency):
		return aggregates.Invalid("currency must be an ISO 4217 code such as EUR, got %q", c.Currency)
	}
	return nil
}

func isCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

func (c Deposit) Validate() error { return positive(c.Amount) }

func (c Withdraw) Validate() error { return positive(c.Amount) }

func positive(amount int64) error {
	if amount <= 0 {
		return aggregates.Invalid("amount must be greater than zero, got %d", amount)
	}
	return nil
}
