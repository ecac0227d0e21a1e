package schemas_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hamba/avro/v2"
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
		// hamba/avro v2.31 panics on this one (the union's first type of
		// an empty union, to check the default against).
		"shop/Empty.v1.avsc": {Data: []byte(`{"type":"record","name":"Empty","namespace":"strata.shop","fields":[{"name":"a","type":[],"default":null}]}`)},
		"shop/Items.v1.avsc": {Data: []byte(`{"type":"record","name":"Items","namespace":"strata.shop","fields":[{"name":"ok","type":"long"},{"name":"a","type":["null",{"type":"map","values":[]}]}]}`)},
	})
	if err == nil {
		t.Fatal("Load accepted a broken catalog")
	}
	for _, want := range []string{
		"shop/Paid.v3.avsc: version 3 follows version 1",
		"shop/Broken.v1.avsc, line 1, column 17: not valid JSON: unexpected EOF",
		`shop/Wrong.v1.avsc: record full name is "strata.shop.Paid", want "strata.shop.Wrong"`,
		"shop/paid-v1.avsc: file name must be",
		"shop/Primitive.v1.avsc: top-level type must be a record",
		"shop/Empty.v1.avsc: not a valid Avro schema: fields[0].type is an empty union []",
		"shop/Items.v1.avsc: not a valid Avro schema: fields[1].type[1].values is an empty union []",
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
		// Must not panic or allocate without bound.
		if err := cat.Decode(ver, body, &m); err != nil {
			return
		}
		// What decodes, resolved into the newest version, round-trips
		// through it.
		latest := ver.Subject.Latest()
		enc, err := cat.EncodeBody(latest, m)
		if err != nil {
			t.Fatalf("%s: % x decodes to %v, which %s cannot write: %v", ver.File, body, m, latest.File, err)
		}
		var back map[string]any
		if err := cat.Decode(latest, enc, &back); err != nil {
			t.Fatalf("%s: %v written as % x does not decode: %v", latest.File, m, enc, err)
		}
		if again, err := cat.EncodeBody(latest, back); err != nil || !bytes.Equal(again, enc) {
			t.Fatalf("%s: % x decodes to %v, then % x (%v)", latest.File, enc, back, again, err)
		}
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

// fuzzSchemas seed FuzzLoad: records of each kind of type, as they would
// be fz/Thing.v2.avsc.
var fuzzSchemas = []string{
	`{"type":"record","name":"Thing","namespace":"strata.fz","fields":[{"name":"amount","type":"long"},{"name":"memo","type":"string","default":""}]}`,
	`{"type":"record","name":"Thing","namespace":"strata.fz","fields":[
		{"name":"b","type":"boolean"},{"name":"i","type":"int"},{"name":"f","type":"float"},{"name":"d","type":"double"},
		{"name":"y","type":"bytes"},{"name":"x","type":{"type":"fixed","name":"Two","size":2}},
		{"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"],"default":"RED"}},
		{"name":"u","type":["null","string"],"default":null},
		{"name":"a","type":{"type":"array","items":{"type":"record","name":"Item","fields":[{"name":"sku","type":"string"}]}}},
		{"name":"m","type":{"type":"map","values":"Item"}},
		{"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}}]}`,
	`{"type":"record","name":"Thing","namespace":"strata.fz","fields":[{"name":"next","type":["null","Thing"]}]}`,
	`{"type":"record","name":"Thing","namespace":"strata.fz","aliases":["Old"],"fields":[{"name":"cents","type":"int","aliases":["amount"]}]}`,
	`{"type":"record","name":"Thing","namespace":"strata.fz","fields":[`,
	`"string"`,
}

// FuzzLoad feeds any .avsc text (as the second version of a subject whose
// first is fixed), any compatibility.yaml and any body to the catalog: load,
// the compatibility gate, the diff, decoding. None may panic. A refusal
// names the file of each problem. A version that loads has a canonical
// form that parses to the same fingerprint; a body it decodes re-encodes
// into one that decodes to the same value, and whatever hamba/avro writes
// passes the body check.
func FuzzLoad(f *testing.F) {
	for _, s := range fuzzSchemas {
		f.Add([]byte(s), []byte(""), []byte{0x02, 0x00})
	}
	f.Add([]byte(fuzzSchemas[0]), []byte("default: FULL_TRANSITIVE\nsubjects:\n  fz/Thing: NONE\n"), []byte{0x0e, 0x00})
	f.Add([]byte(fuzzSchemas[0]), []byte("default: SOMETIMES\nsubjects: {fz/Other: BACKWARD}\n"), []byte{})
	v1 := `{"type":"record","name":"Thing","namespace":"strata.fz","fields":[{"name":"amount","type":"long"}]}`
	f.Fuzz(func(t *testing.T, avsc, modes, body []byte) {
		fsys := fstest.MapFS{"fz/Thing.v1.avsc": {Data: []byte(v1)}, "fz/Thing.v2.avsc": {Data: avsc}}
		if len(modes) > 0 {
			fsys[schemas.ModesFile] = &fstest.MapFile{Data: modes}
		}
		cat, err := schemas.Load(fsys)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "fz/Thing.v2.avsc") && !strings.HasPrefix(line, schemas.ModesFile) {
					t.Fatalf("a problem that names no file: %q", line)
				}
			}
			return
		}
		s, _ := cat.Subject("fz/Thing")
		first, second := s.Versions[0], s.Versions[1]
		for _, v := range cat.Check(nil) {
			if v.Error() == "" {
				t.Fatal("a violation without a message")
			}
		}
		_ = schemas.Diff(first.Schema, second.Schema)
		_ = schemas.Diff(second.Schema, first.Schema)
		_ = schemas.CanRead(first.Schema, second.Schema)
		again, err := avro.ParseWithCache(second.Schema.String(), "", &avro.SchemaCache{})
		if err != nil {
			t.Fatalf("the canonical form %s does not parse: %v", second.Schema.String(), err)
		}
		if fp := again.Fingerprint(); fp != second.Schema.Fingerprint() {
			t.Fatalf("canonical form %s: another fingerprint", second.Schema.String())
		}
		// A body of the new version, and of the old one read as the new.
		for _, v := range []*schemas.Version{second, first} {
			var m map[string]any
			if err := cat.Decode(v, body, &m); err != nil {
				continue
			}
			if _, err := cat.DecodeGeneric(v, body); err != nil {
				t.Fatalf("%s: Decode reads % x, DecodeGeneric does not: %v", v.File, body, err)
			}
			enc, err := cat.EncodeBody(second, m)
			if err != nil {
				continue // hamba cannot write back every value it reads (a decimal's scale)
			}
			var back map[string]any
			if err := cat.Decode(second, enc, &back); err != nil {
				t.Fatalf("%s: % x, written back as % x, does not decode: %v", v.File, body, enc, err)
			}
			if enc2, err := cat.EncodeBody(second, back); err != nil || !bytes.Equal(enc, enc2) {
				t.Fatalf("%s: % x decodes to %v, then % x (%v)", v.File, enc, back, enc2, err)
			}
		}
	})
}
