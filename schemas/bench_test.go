package schemas_test

import (
	"testing"

	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/schemas"
)

var opened = account.Opened{Holder: "ada lovelace", InitialBalance: 100_000, Currency: "EUR"}

// BenchmarkEncode writes an event with its subject's newest version, as
// every produced event is written.
func BenchmarkEncode(b *testing.B) {
	cat := schemas.Default()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cat.Encode("account/AccountOpened", opened); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode parses and decodes an event written with the newest
// version, and one written with v1 that schema resolution reads as the
// newest (a defaulted field, a field read through its alias).
func BenchmarkDecode(b *testing.B) {
	cat := schemas.Default()
	s, ok := cat.Subject("account/AccountOpened")
	if !ok {
		b.Fatal("no subject account/AccountOpened")
	}
	newest, err := cat.Encode(s.String(), opened)
	if err != nil {
		b.Fatal(err)
	}
	v1, err := cat.EncodeVersion(s.Versions[0], map[string]any{"owner": opened.Holder, "initial_balance": opened.InitialBalance})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		data []byte
	}{
		{"newest", newest},
		{"resolved/v1", v1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ver, body, err := cat.Parse(bc.data)
				if err != nil {
					b.Fatal(err)
				}
				var ev account.Opened
				if err := cat.Decode(ver, body, &ev); err != nil {
					b.Fatal(err)
				}
				if ev != opened {
					b.Fatalf("decoded %+v, want %+v", ev, opened)
				}
			}
		})
	}
}
