package account

// State is an account as its events made it.
type State struct {
	Open    bool   `json:"open" avro:"open"`
	Owner   string `json:"owner" avro:"owner"`
	Balance int64  `json:"balance" avro:"balance"`
	// Currency is the account's ISO 4217 currency.
	Currency string `json:"currency" avro:"currency"`
}
