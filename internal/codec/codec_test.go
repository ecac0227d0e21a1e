package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/aggregates/order"
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
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		if len(evs) == 0 {
			t.Fatal("no error and no event")
		}
		// An event read, from any version, is written with the newest
		// and reads back the same.
		for _, ev := range evs {
			b, err := c.EncodeEvent(ev)
			if err != nil {
				t.Fatalf("%#v does not encode: %v", ev, err)
			}
			again, ver, err := c.DecodeEvents(b)
			if err != nil || len(again) != 1 || !reflect.DeepEqual(again[0], ev) || ver != ver.Subject.Latest() {
				t.Fatalf("%#v written as % x reads as %#v, %v", ev, b, again, err)
			}
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

// TestCommandAvroRefusesMalformedBodies: commands that hamba/avro alone
// would read (a body cut at a field's boundary read with zero values, an
// items count of MinInt64 read as a slice of negative length, a string
// that is not UTF-8) are invalid.
func TestCommandAvroRefusesMalformedBodies(t *testing.T) {
	cat := schemas.Default()
	acc := Codec{Type: account.Type, Catalog: cat}
	open, err := cat.Encode("account/OpenAccount", account.Open{Owner: "ada", InitialBalance: 500, Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	ord := Codec{Type: order.Type, Catalog: cat}
	create, err := cat.Encode("order/CreateOrder", order.Create{CustomerID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	minInt64 := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00}
	for _, tc := range []struct {
		name string
		c    Codec
		data []byte
		want string
	}{
		{"OpenAccount cut after the owner", acc, open[:14], "ends inside a long"},
		{"OpenAccount with a byte more", acc, append(append([]byte(nil), open...), 0x00), "1 byte(s) after the end of the record"},
		{"OpenAccount with an owner in Latin-1", acc, append(append(append([]byte(nil), open[:10]...), 0x06, 'a', 0xe9, 'a'), open[14:]...), "a string that is not UTF-8"},
		{"CreateOrder of MinInt64 items", ord, append(create[:12:12], minInt64...), "array block count -9223372036854775808"},
		{"CreateOrder of a million items in 4 bytes", ord, append(create[:12:12], 0x80, 0x80, 0x80, 0x01, 0x00), "ends inside an array of 1048576 items"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, err := tc.c.CommandAvro(tc.data)
			if !errors.Is(err, aggregates.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%.200v, %v; want an invalid command: %s", cmd, err, tc.want)
			}
		})
	}
}

// sampleCommands are a command of each type of the example domains.
var sampleCommands = []aggregates.Command{
	account.Open{Owner: "ada", InitialBalance: 500, Currency: "USD"},
	account.Deposit{Amount: 7},
	account.Withdraw{Amount: 3},
	order.Create{CustomerID: "cus-1", Items: []order.Item{{SKU: "A-1", Qty: 2, UnitPrice: 150}, {SKU: "B-2", Qty: 1, UnitPrice: 0}}},
	order.AddItem{SKU: "C-3", Qty: 5, UnitPrice: 99},
	order.RemoveItem{SKU: "A-1"},
	order.Confirm{},
	order.Cancel{Reason: "changed my mind"},
	order.Ship{Carrier: "post", Tracking: "T-1"},
}

// commandCodecs are the codecs of the example domains, by aggregate.
func commandCodecs() []Codec {
	cat := schemas.Default()
	return []Codec{{Type: account.Type, Catalog: cat}, {Type: order.Type, Catalog: cat}}
}

// FuzzCommandAvro feeds outside bytes to the Avro command decoder of each
// example aggregate, seeded with every command of every schema version. It
// must never panic; a refusal is an invalid command; a command it accepts
// is of the aggregate's, round-trips (encoded with the newest schema, it
// decodes to the same command) and holds only UTF-8 strings.
func FuzzCommandAvro(f *testing.F) {
	cat := schemas.Default()
	codecs := commandCodecs()
	for _, cmd := range sampleCommands {
		for _, c := range codecs {
			s, ok := cat.Subject(c.Type.Name() + "/" + cmd.CommandType())
			if !ok {
				continue
			}
			for _, v := range s.Versions {
				if b, err := cat.EncodeVersion(v, cmd); err == nil {
					f.Add(b)
				}
			}
		}
	}
	f.Add([]byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range codecs {
			cmd, err := c.CommandAvro(data)
			if err != nil {
				if !errors.Is(err, aggregates.ErrInvalid) || err.Error() == "" {
					t.Fatalf("%s: not an invalid command: %v", c.Type.Name(), err)
				}
				continue
			}
			if !slices.Contains(c.Type.CommandTypes(), cmd.CommandType()) {
				t.Fatalf("%s decoded a %T", c.Type.Name(), cmd)
			}
			again, err := cat.Encode(c.Type.Name()+"/"+cmd.CommandType(), cmd)
			if err != nil {
				t.Fatalf("%s: re-encode %#v: %v", c.Type.Name(), cmd, err)
			}
			back, err := c.CommandAvro(again)
			if err != nil || !reflect.DeepEqual(back, cmd) {
				t.Fatalf("%s: %#v re-encoded as % x decodes to %#v, %v", c.Type.Name(), cmd, again, back, err)
			}
			if b, _ := json.Marshal(cmd); !utf8.Valid(b) || bytes.Contains(b, []byte(`\ufffd`)) {
				t.Fatalf("%s: %#v holds a string that is not UTF-8", c.Type.Name(), cmd)
			}
		}
	})
}

// FuzzCommandJSON feeds any command type and data to the JSON command
// decoder of each example aggregate (the data of an HTTP command, and of a
// JSON record on a commands topic). It must never panic; a refusal is an
// invalid command naming the type; a command it accepts round-trips
// through JSON and through Avro.
func FuzzCommandJSON(f *testing.F) {
	for _, cmd := range sampleCommands {
		b, _ := json.Marshal(cmd)
		f.Add(cmd.CommandType(), b)
	}
	f.Add("Deposit", []byte(`{"amount":1.5}`))
	f.Add("Deposit", []byte(`{"amount":5} {}`))
	f.Add("OpenAccount", []byte("{\"owner\":\"\xff\"}"))
	f.Add("CreateOrder", []byte(`{"items":[[[[[[]]]]]]}`))
	f.Add("Explode", []byte(`{}`))
	f.Add("Confirm", []byte(``))
	cat := schemas.Default()
	codecs := commandCodecs()
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		for _, c := range codecs {
			cmd, err := c.CommandJSON(typ, data)
			if err != nil {
				if !errors.Is(err, aggregates.ErrInvalid) || !strings.Contains(err.Error(), fmt.Sprintf("%q", typ)) && !strings.Contains(err.Error(), typ+" data") {
					t.Fatalf("%s %q: an error that is not an invalid command naming the type: %v", c.Type.Name(), typ, err)
				}
				continue
			}
			if cmd.CommandType() != typ || !utf8.Valid(data) {
				t.Fatalf("%s: %q decoded as a %T from %q", c.Type.Name(), typ, cmd, data)
			}
			b, err := json.Marshal(cmd)
			if err != nil {
				t.Fatal(err)
			}
			back, err := c.CommandJSON(typ, b)
			if err != nil || !reflect.DeepEqual(back, cmd) {
				t.Fatalf("%s: %#v as JSON %s decodes to %#v, %v", c.Type.Name(), cmd, b, back, err)
			}
			avro, err := cat.Encode(c.Type.Name()+"/"+typ, cmd)
			if err != nil {
				t.Fatalf("%s: %#v does not encode: %v", c.Type.Name(), cmd, err)
			}
			// Compared as Avro: a nil slice and an empty one are the same
			// array.
			back, err = c.CommandAvro(avro)
			if err != nil {
				t.Fatalf("%s: %#v through Avro: %v", c.Type.Name(), cmd, err)
			}
			if again, _ := cat.Encode(c.Type.Name()+"/"+typ, back); !bytes.Equal(again, avro) {
				t.Fatalf("%s: %#v through Avro decodes to %#v", c.Type.Name(), cmd, back)
			}
		}
	})
}
