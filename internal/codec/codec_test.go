package codec

import (
	"strings"
	"testing"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/schemas"
)

func old(t testing.TB, cat *schemas.Catalog, subject string, n int, data map[string]any) []byte {
	t.Helper()
	s, ok := cat.Subject(subject)
	if !ok {
		t.Fatalf("no subject %s", subject)
	}
	b, err := cat.EncodeVersion(s.Versions[n-1], data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOldVersionsReadAsTheNewest: each kind of change in the account's
// schema history, read from the bytes the old version wrote.
func TestOldVersionsReadAsTheNewest(t *testing.T) {
	cat := schemas.Default()
	c := Codec{Type: account.Type, Catalog: cat}
	for _, tc := range []struct {
		name    string
		subject string
		version int
		data    map[string]any
		want    aggregates.Event
	}{
		{"v1 → v3: currency defaulted, owner read through the alias", "account/AccountOpened", 1,
			map[string]any{"owner": "ada", "initial_balance": int64(100)}, account.Opened{Holder: "ada", InitialBalance: 100, Currency: "EUR"}},
		{"v2 → v3: owner read through the alias", "account/AccountOpened", 2,
			map[string]any{"owner": "bo", "initial_balance": int64(5), "currency": "USD"}, account.Opened{Holder: "bo", InitialBalance: 5, Currency: "USD"}},
		{"v1 → v2 by the upcaster: euros to cents", "account/MoneyWithdrawn", 1,
			map[string]any{"amount": 12.345}, account.Withdrawn{Amount: 1235}},
		{"newest as is", "account/MoneyWithdrawn", 2,
			map[string]any{"amount": int64(7)}, account.Withdrawn{Amount: 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, ver, err := c.DecodeEvents(old(t, cat, tc.subject, tc.version, tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if ver.N != tc.version || len(evs) != 1 || evs[0] != tc.want {
				t.Fatalf("got %#v from v%d, want %#v", evs, ver.N, tc.want)
			}
		})
	}
	if _, _, err := c.DecodeEvents(old(t, cat, "account/MoneyWithdrawn", 1, map[string]any{"amount": 1e300})); err == nil || !strings.Contains(err.Error(), "not a finite number of euros") {
		t.Fatalf("absurd amount: %v", err)
	}
}

// TestUpcastersSplitDropAndChain uses a made-up history of the account:
// a retired event type split into two, one dropped, one chained.
func TestUpcastersSplitDropAndChain(t *testing.T) {
	cat := schemas.Default()
	d := account.Decider
	d.Upcasters = append(d.Upcasters,
		// AccountOpened v1 stands for a retired "opened with deposit":
		// split into an opening and a deposit.
		aggregates.Upcaster{Event: "AccountOpened", From: 1, Up: func(m map[string]any) ([]aggregates.Upcast, error) {
			return []aggregates.Upcast{
				{Type: "AccountOpened", Version: 2, Data: map[string]any{"owner": m["owner"], "initial_balance": int64(0), "currency": "EUR"}},
				{Type: "MoneyDeposited", Version: 1, Data: map[string]any{"amount": m["initial_balance"]}},
			}, nil
		}},
		// AccountOpened v2 chains to v3 through a second upcaster.
		aggregates.Upcaster{Event: "AccountOpened", From: 2, Up: func(m map[string]any) ([]aggregates.Upcast, error) {
			return []aggregates.Upcast{{Type: "AccountOpened", Version: 3, Data: map[string]any{"holder": strings.ToUpper(m["owner"].(string)), "initial_balance": m["initial_balance"], "currency": m["currency"]}}}, nil
		}},
		// MoneyDeposited v1 with amount 0 is dropped.
		aggregates.Upcaster{Event: "MoneyDeposited", From: 1, Up: func(m map[string]any) ([]aggregates.Upcast, error) {
			if m["amount"] == int64(0) {
				return nil, nil
			}
			return []aggregates.Upcast{{Type: "MoneyDeposited", Version: 1, Data: m}}, nil
		}},
	)
	typ, err := aggregates.Register(d)
	if err != nil {
		t.Fatal(err)
	}
	c := Codec{Type: typ, Catalog: cat}
	evs, _, err := c.DecodeEvents(old(t, cat, "account/AccountOpened", 1, map[string]any{"owner": "ada", "initial_balance": int64(40)}))
	if err == nil || !strings.Contains(err.Error(), "more than 64 steps") {
		// MoneyDeposited v1's upcaster returns MoneyDeposited v1 again: a
		// loop, caught, not a hang.
		t.Fatalf("looping upcaster: %v %v", evs, err)
	}
	// Fix the loop: a deposit of 0 is dropped, anything else is kept as
	// the newest version by resolution.
	d.Upcasters[len(d.Upcasters)-1].Up = func(m map[string]any) ([]aggregates.Upcast, error) { return nil, nil }
	typ, _ = aggregates.Register(d)
	c = Codec{Type: typ, Catalog: cat}
	evs, _, err = c.DecodeEvents(old(t, cat, "account/AccountOpened", 1, map[string]any{"owner": "ada", "initial_balance": int64(40)}))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0] != (account.Opened{Holder: "ADA", InitialBalance: 0, Currency: "EUR"}) {
		t.Fatalf("split, chained and dropped: %#v", evs)
	}
	if _, _, err := c.DecodeEvent(old(t, cat, "account/MoneyDeposited", 1, map[string]any{"amount": int64(3)})); err == nil || !strings.Contains(err.Error(), "upcasts to 0 events") {
		t.Fatalf("DecodeEvent of a dropped event: %v", err)
	}
}

// FuzzDecodeEvents feeds outside bytes to the event decoder: single-object
// encoding with every known fingerprint, the registry's wire format, and
// the upcaster path. It must return an error, never panic or hang.
func FuzzDecodeEvents(f *testing.F) {
	cat := schemas.Default()
	reg := schemas.NewRegistry(nil)
	for _, s := range cat.Subjects() {
		for _, v := range s.Versions {
			reg.Add(int(v.Fingerprint%1000), v)
			b, err := cat.EncodeVersion(v, map[string]any{"owner": "ada", "holder": "h", "initial_balance": int64(1), "currency": "EUR",
				"amount": int64(2), "open": true, "balance": int64(3)})
			if err == nil {
				f.Add(b)
			}
		}
	}
	wd, _ := cat.EncodeVersion(mustSubject(cat, "account/MoneyWithdrawn").Versions[0], map[string]any{"amount": 1.5})
	f.Add(wd)
	f.Add([]byte{0, 0, 0, 0, 1, 2})
	c := Codec{Type: account.Type, Catalog: cat.WithRegistry(reg, false)}
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, _, err := c.DecodeEvents(data)
		if err == nil && len(evs) == 0 {
			t.Fatal("no error and no event")
		}
	})
}

func mustSubject(cat *schemas.Catalog, name string) *schemas.Subject {
	s, ok := cat.Subject(name)
	if !ok {
		panic(name)
	}
	return s
}
