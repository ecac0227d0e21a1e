package schemas_test

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/schemas"
)

func TestDefaultCatalogBindsTheExamples(t *testing.T) {
	cat := schemas.Default()
	if err := cat.Bind(account.Type); err != nil {
		t.Fatal(err)
	}
	if _, ok := cat.Subject("account/MoneyDeposited"); !ok {
		t.Fatal("account/MoneyDeposited missing")
	}
}

func TestRoundTripIsSingleObjectEncoding(t *testing.T) {
	cat := schemas.Default()
	b, err := cat.Encode("account/MoneyDeposited", account.Deposited{Amount: 1234})
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0xC3 || b[1] != 0x01 {
		t.Fatalf("magic = % x", b[:2])
	}
	var got account.Deposited
	v, err := cat.DecodeSubject("account/MoneyDeposited", b, &got)
	if err != nil {
		t.Fatal(err)
	}
	if got.Amount != 1234 || v.N != 1 {
		t.Fatalf("got %+v from v%d", got, v.N)
	}
	// Avro long 1234 zig-zag varint is a4 13.
	if body := b[10:]; len(body) != 2 || body[0] != 0xa4 || body[1] != 0x13 {
		t.Fatalf("body = % x", body)
	}
}

const v1 = `{"type":"record","name":"Paid","namespace":"strata.shop","fields":[{"name":"amount","type":"int"}]}`
const v2 = `{"type":"record","name":"Paid","namespace":"strata.shop","fields":[{"name":"amount","type":"long"},{"name":"currency","type":"string","default":"EUR"}]}`

type paid struct {
	Amount   int64  `avro:"amount"`
	Currency string `avro:"currency"`
}

func TestOldVersionResolvesIntoNewest(t *testing.T) {
	cat, err := schemas.Load(fstest.MapFS{
		"shop/Paid.v1.avsc": {Data: []byte(v1)},
		"shop/Paid.v2.avsc": {Data: []byte(v2)},
	})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := cat.Subject("shop/Paid")
	old, err := cat.EncodeVersion(s.Versions[0], map[string]any{"amount": 7})
	if err != nil {
		t.Fatal(err)
	}
	var got paid
	v, err := cat.DecodeSubject("shop/Paid", old, &got)
	if err != nil {
		t.Fatal(err)
	}
	if v.N != 1 || got != (paid{Amount: 7, Currency: "EUR"}) {
		t.Fatalf("got %+v from v%d", got, v.N)
	}
}

func TestLoadReportsEveryProblemByFile(t *testing.T) {
	_, err := schemas.Load(fstest.MapFS{
		"shop/Paid.v1.avsc":      {Data: []byte(v1)},
		"shop/Paid.v3.avsc":      {Data: []byte(v2)},
		"shop/Broken.v1.avsc":    {Data: []byte(`{"type":"record"`)},
		"shop/Wrong.v1.avsc":     {Data: []byte(v1)},
		"shop/paid-v1.avsc":      {Data: []byte(v1)},
		"shop/Primitive.v1.avsc": {Data: []byte(`"string"`)},
	})
	if err == nil {
		t.Fatal("Load accepted a broken catalog")
	}
	for _, want := range []string{
		"shop/Paid.v3.avsc: version 3 follows version 1",
		"shop/Broken.v1.avsc: not a valid Avro schema",
		`shop/Wrong.v1.avsc: record full name is "strata.shop.Paid", want "strata.shop.Wrong"`,
		"shop/paid-v1.avsc: file name must be",
		"shop/Primitive.v1.avsc: top-level type must be a record",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestParseRejectsBadBytes(t *testing.T) {
	cat := schemas.Default()
	for name, tc := range map[string]struct {
		data []byte
		want error
	}{
		"empty":         {nil, schemas.ErrNotSingleObject},
		"json":          {[]byte(`{"amount":5}`), schemas.ErrNotSingleObject},
		"short":         {[]byte{0xC3, 0x01, 1, 2}, schemas.ErrNotSingleObject},
		"unknown print": {[]byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0}, schemas.ErrUnknownFingerprint},
	} {
		if _, _, err := cat.Parse(tc.data); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
	b, _ := cat.Encode("account/MoneyDeposited", account.Deposited{Amount: 1})
	var w account.Withdrawn
	if _, err := cat.DecodeSubject("account/MoneyWithdrawn", b, &w); !errors.Is(err, schemas.ErrUnexpectedSubject) {
		t.Fatalf("err = %v", err)
	}
	// Truncated body.
	b, _ = cat.Encode("account/AccountOpened", account.Opened{Holder: "ada", InitialBalance: 5})
	var o account.Opened
	if _, err := cat.DecodeSubject("account/AccountOpened", b[:12], &o); err == nil {
		t.Fatal("truncated payload decoded")
	}
}

// TestEncodeAfterAFailedEncode: a value that does not fit its schema
// leaves nothing behind for the next encode (EncodeVersion pools writers).
func TestEncodeAfterAFailedEncode(t *testing.T) {
	cat := schemas.Default()
	for range 3 {
		if _, err := cat.Encode("account/AccountOpened", map[string]any{"holder": "ada"}); err == nil {
			t.Fatal("a record without initial_balance encoded")
		}
		b, err := cat.Encode("account/MoneyDeposited", account.Deposited{Amount: 1234})
		if err != nil {
			t.Fatal(err)
		}
		if body := b[10:]; len(b) != 12 || body[0] != 0xa4 || body[1] != 0x13 {
			t.Fatalf("encoded % x", b)
		}
	}
}

func FuzzDecode(f *testing.F) {
	cat := schemas.Default()
	for _, s := range cat.Subjects() {
		b, err := cat.EncodeVersion(s.Versions[0], map[string]any{"owner": "ada", "initial_balance": 1, "amount": 2, "open": true, "balance": 3})
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte{0xC3, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		ver, body, err := cat.Parse(data)
		if err != nil {
			return
		}
		var m map[string]any
		_ = cat.Decode(ver, body, &m) // must not panic or allocate without bound
	})
}

func TestTheShippedSchemasPassTheGate(t *testing.T) {
	cat := schemas.Default()
	for _, v := range cat.Check(schemas.UpcastedBy(account.Type)) {
		t.Error(v)
	}
	// Without the upcaster, MoneyWithdrawn v1 → v2 is refused.
	vs := cat.Check(nil)
	if len(vs) != 1 || vs[0].Subject != "account/MoneyWithdrawn" || !strings.Contains(vs[0].Error(), "double cannot be read as long") {
		t.Fatalf("without upcasters: %v", vs)
	}
	if m := cat.Mode("account/AccountOpened"); m != schemas.BackwardTransitive {
		t.Fatalf("AccountOpened mode %s", m)
	}
}

func TestBindWantsAnUpcasterForUnreadableVersions(t *testing.T) {
	d := account.Decider
	d.Upcasters = nil
	typ, err := aggregates.Register(d)
	if err != nil {
		t.Fatal(err)
	}
	err = schemas.Default().Bind(typ)
	if err == nil || !strings.Contains(err.Error(), "account/MoneyWithdrawn.v1.avsc cannot be read as account/MoneyWithdrawn.v2.avsc") ||
		!strings.Contains(err.Error(), "add an upcaster of MoneyWithdrawn v1") {
		t.Fatalf("err = %v", err)
	}
	d.Upcasters = []aggregates.Upcaster{{Event: "MoneyWithdrawn", From: 7, Up: func(map[string]any) ([]aggregates.Upcast, error) { return nil, nil }}}
	typ, _ = aggregates.Register(d)
	if err := schemas.Default().Bind(typ); err == nil || !strings.Contains(err.Error(), "no schemas/account/MoneyWithdrawn.v7.avsc") {
		t.Fatalf("err = %v", err)
	}
}
