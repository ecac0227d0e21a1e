package account_test

import (
	"testing"
	"time"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/aggregates/account"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// open is an account with a balance, as most commands find it.
var open = account.Decider.Evolve(account.Decider.Initial,
	account.Opened{Holder: "ada", InitialBalance: 100_000, Currency: "EUR"})

// BenchmarkDecide decides one command through account.Type, as the runtime
// does (Validate, then Decide).
func BenchmarkDecide(b *testing.B) {
	for _, bc := range []struct {
		name   string
		state  account.State
		cmd    aggregates.Command
		reject bool
	}{
		{"OpenAccount", account.State{}, account.Open{Owner: "ada", InitialBalance: 1000}, false},
		{"Deposit", open, account.Deposit{Amount: 500}, false},
		{"Withdraw", open, account.Withdraw{Amount: 500}, false},
		{"Withdraw/rejected", open, account.Withdraw{Amount: 1_000_000}, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, err := account.Type.Decide(bc.state, bc.cmd, now)
				if (err != nil) != bc.reject {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
		})
	}
}

// BenchmarkEvolve folds one event into an open account.
func BenchmarkEvolve(b *testing.B) {
	for _, bc := range []struct {
		name string
		ev   aggregates.Event
	}{
		{"AccountOpened", account.Opened{Holder: "ada", InitialBalance: 1000, Currency: "EUR"}},
		{"MoneyDeposited", account.Deposited{Amount: 500}},
		{"MoneyWithdrawn", account.Withdrawn{Amount: 500}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = account.Type.Evolve(open, bc.ev)
			}
		})
	}
}
