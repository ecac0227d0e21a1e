package account

// Opened records that an account was opened.
type Opened struct {
	Owner          string `json:"owner" avro:"owner"`
	InitialBalance int64  `json:"initial_balance" avro:"initial_balance"`
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
