package account

// Opened records that an account was opened.
type Opened struct {
	// Holder was called owner before schema v3 (an alias reads it).
	Holder         string `json:"holder" avro:"holder"`
	InitialBalance int64  `json:"initial_balance" avro:"initial_balance"`
	// Currency is EUR for every event written before schema v2.
	Currency string `json:"currency" avro:"currency"`
}

// Deposited records money paid into an account.
type Deposited struct {
	Amount int64 `json:"amount" avro:"amount"`
}

// Withdrawn records money taken out of an account.
type Withdrawn struct {
	Amount int64 `json:"amount" avro:"amount"`
}

func (Opened) EventType() string    { return "AccountOpened" }
func (Deposited) EventType() string { return "MoneyDeposited" }
func (Withdrawn) EventType() string { return "MoneyWithdrawn" }
