package codec

import (
	"testing"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/schemas"
)

// BenchmarkDecodeEvents decodes a stored event as the runtime does on every
// fold: one at the newest version, one old enough to need the upcaster
// (MoneyWithdrawn v1, euros as a double, into v2's cents).
func BenchmarkDecodeEvents(b *testing.B) {
	cat := schemas.Default()
	c := Codec{Type: account.Type, Catalog: cat}
	for _, bc := range []struct {
		name string
		data []byte
		want aggregates.Event
	}{
		{"newest", old(b, cat, "account/MoneyWithdrawn", 2, map[string]any{"amount": int64(1235)}), account.Withdrawn{Amount: 1235}},
		{"upcast/v1", old(b, cat, "account/MoneyWithdrawn", 1, map[string]any{"amount": 12.345}), account.Withdrawn{Amount: 1235}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				evs, _, err := c.DecodeEvents(bc.data)
				if err != nil {
					b.Fatal(err)
				}
				if len(evs) != 1 || evs[0] != bc.want {
					b.Fatalf("got %#v, want %#v", evs, bc.want)
				}
			}
		})
	}
}

// BenchmarkCommandJSON decodes the JSON body of an HTTP command.
func BenchmarkCommandJSON(b *testing.B) {
	c := Codec{Type: account.Type, Catalog: schemas.Default()}
	data := []byte(`{"owner":"ada lovelace","initial_balance":100000,"currency":"EUR"}`)
	want := account.Open{Owner: "ada lovelace", InitialBalance: 100_000, Currency: "EUR"}
	b.ReportAllocs()
	for b.Loop() {
		cmd, err := c.CommandJSON("OpenAccount", data)
		if err != nil {
			b.Fatal(err)
		}
		if cmd != want {
			b.Fatalf("got %#v, want %#v", cmd, want)
		}
	}
}

// BenchmarkCommandAvro decodes a command sent to the commands topic in
// Avro single-object encoding.
func BenchmarkCommandAvro(b *testing.B) {
	cat := schemas.Default()
	c := Codec{Type: account.Type, Catalog: cat}
	want := account.Open{Owner: "ada lovelace", InitialBalance: 100_000, Currency: "EUR"}
	data, err := cat.Encode("account/OpenAccount", want)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		cmd, err := c.CommandAvro(data)
		if err != nil {
			b.Fatal(err)
		}
		if cmd != want {
			b.Fatalf("got %#v, want %#v", cmd, want)
		}
	}
}

// BenchmarkEncodeState encodes an account's state, as every applied command
// stores it.
func BenchmarkEncodeState(b *testing.B) {
	c := Codec{Type: account.Type, Catalog: schemas.Default()}
	state := account.State{Open: true, Owner: "ada lovelace", Balance: 100_000, Currency: "EUR"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.EncodeState(state); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeState decodes a stored account state, as loading an
// aggregate does.
func BenchmarkDecodeState(b *testing.B) {
	c := Codec{Type: account.Type, Catalog: schemas.Default()}
	state := account.State{Open: true, Owner: "ada lovelace", Balance: 100_000, Currency: "EUR"}
	data, err := c.EncodeState(state)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := c.DecodeState(data)
		if err != nil {
			b.Fatal(err)
		}
		if got != state {
			b.Fatalf("got %#v, want %#v", got, state)
		}
	}
}
