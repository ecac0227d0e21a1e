package schemas

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hamba/avro/v2"
)

func rec(fields string) string {
	return `{"type":"record","name":"R","namespace":"strata.t","fields":[` + fields + `]}`
}

// compatPairs are (reader, writer) pairs for each resolution rule, in the
// compatible and the incompatible direction, with the problem kinds the
// checker must report.
var compatPairs = []struct {
	name           string
	reader, writer string
	want           []ProblemKind
}{
	{"same", rec(`{"name":"a","type":"int"}`), rec(`{"name":"a","type":"int"}`), nil},
	{"int promoted to long", `"long"`, `"int"`, nil},
	{"long narrowed to int", `"int"`, `"long"`, []ProblemKind{TypeMismatch}},
	{"int promoted to float", `"float"`, `"int"`, nil},
	{"int promoted to double", `"double"`, `"int"`, nil},
	{"long promoted to double", `"double"`, `"long"`, nil},
	{"float promoted to double", `"double"`, `"float"`, nil},
	{"double narrowed to float", `"float"`, `"double"`, []ProblemKind{TypeMismatch}},
	{"string read as bytes", `"bytes"`, `"string"`, nil},
	{"bytes read as string", `"string"`, `"bytes"`, nil},
	{"string to int", `"int"`, `"string"`, []ProblemKind{TypeMismatch}},
	{"boolean to int", `"int"`, `"boolean"`, []ProblemKind{TypeMismatch}},
	{"field added with default", rec(`{"name":"a","type":"int"},{"name":"b","type":"string","default":"x"}`), rec(`{"name":"a","type":"int"}`), nil},
	{"field added without default", rec(`{"name":"a","type":"int"},{"name":"b","type":"string"}`), rec(`{"name":"a","type":"int"}`), []ProblemKind{FieldMissing}},
	{"field removed (reader ignores it)", rec(`{"name":"a","type":"int"}`), rec(`{"name":"a","type":"int"},{"name":"b","type":"string"}`), nil},
	{"field renamed with alias", rec(`{"name":"c","type":"int","aliases":["a"]}`), rec(`{"name":"a","type":"int"}`), nil},
	{"field renamed without alias", rec(`{"name":"c","type":"int"}`), rec(`{"name":"a","type":"int"}`), []ProblemKind{FieldMissing}},
	{"field type narrowed", rec(`{"name":"a","type":"int"}`), rec(`{"name":"a","type":"long"}`), []ProblemKind{TypeMismatch}},
	{"nested record field added without default",
		rec(`{"name":"n","type":{"type":"record","name":"N","fields":[{"name":"x","type":"int"},{"name":"y","type":"int"}]}}`),
		rec(`{"name":"n","type":{"type":"record","name":"N","fields":[{"name":"x","type":"int"}]}}`), []ProblemKind{FieldMissing}},
	{"record renamed with alias", `{"type":"record","name":"S","namespace":"strata.t","aliases":["strata.t.R"],"fields":[]}`, rec(``), nil},
	{"record renamed without alias", `{"type":"record","name":"S","namespace":"strata.t","fields":[]}`, rec(``), []ProblemKind{NameMismatch}},
	{"enum symbol added (reader has it)", `{"type":"enum","name":"E","symbols":["A","B","C"]}`, `{"type":"enum","name":"E","symbols":["A","B"]}`, nil},
	{"enum symbol unknown to reader", `{"type":"enum","name":"E","symbols":["A"]}`, `{"type":"enum","name":"E","symbols":["A","B"]}`, []ProblemKind{SymbolMissing}},
	{"enum symbol unknown, reader default", `{"type":"enum","name":"E","symbols":["A","U"],"default":"U"}`, `{"type":"enum","name":"E","symbols":["A","B"]}`, nil},
	{"array items promoted", `{"type":"array","items":"long"}`, `{"type":"array","items":"int"}`, nil},
	{"array items narrowed", `{"type":"array","items":"int"}`, `{"type":"array","items":"long"}`, []ProblemKind{TypeMismatch}},
	{"map values promoted", `{"type":"map","values":"double"}`, `{"type":"map","values":"float"}`, nil},
	{"map values changed", `{"type":"map","values":"string"}`, `{"type":"map","values":"int"}`, []ProblemKind{TypeMismatch}},
	{"fixed same size", `{"type":"fixed","name":"F","size":4}`, `{"type":"fixed","name":"F","size":4}`, nil},
	{"fixed size changed", `{"type":"fixed","name":"F","size":8}`, `{"type":"fixed","name":"F","size":4}`, []ProblemKind{SizeMismatch}},
	{"writer value into reader union", `["null","string"]`, `"string"`, nil},
	{"writer value promoted into reader union", `["null","long"]`, `"int"`, nil},
	{"writer value into union without it", `["null","int"]`, `"string"`, []ProblemKind{TypeMismatch}},
	{"writer union into reader value", `"string"`, `["null","string"]`, []ProblemKind{BranchMissing}},
	{"writer union subset of reader union", `["null","string","int"]`, `["null","string"]`, nil},
	{"writer union branch removed from reader", `["null","string"]`, `["null","string","int"]`, []ProblemKind{BranchMissing}},
	{"optional field added with null default", rec(`{"name":"a","type":"int"},{"name":"b","type":["null","string"],"default":null}`), rec(`{"name":"a","type":"int"}`), nil},
	{"named type reference", rec(`{"name":"p","type":{"type":"record","name":"P","fields":[{"name":"x","type":"long"}]}},{"name":"q","type":"P"}`),
		rec(`{"name":"p","type":{"type":"record","name":"P","fields":[{"name":"x","type":"int"}]}},{"name":"q","type":"P"}`), nil},
	{"recursive type", `{"type":"record","name":"L","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","L"]}]}`,
		`{"type":"record","name":"L","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","L"]}]}`, nil},
}

func TestCanReadFollowsTheSpecification(t *testing.T) {
	for _, tc := range compatPairs {
		t.Run(tc.name, func(t *testing.T) {
			r := avro.MustParse(tc.reader)
			w := avro.MustParse(tc.writer)
			got := CanRead(r, w)
			var kinds []ProblemKind
			for _, p := range got {
				kinds = append(kinds, p.Kind)
			}
			if len(kinds) != len(tc.want) {
				t.Fatalf("problems %v, want kinds %v", got, tc.want)
			}
			for i := range kinds {
				if kinds[i] != tc.want[i] {
					t.Fatalf("problems %v, want kinds %v", got, tc.want)
				}
			}
			// Cross-check the verdict with hamba/avro's checker (fresh
			// instance per check: a shared one caches stale verdicts).
			herr := avro.NewSchemaCompatibility().Compatible(r, w)
			if (herr == nil) != (len(got) == 0) {
				t.Errorf("hamba/avro says %v, we say %v", herr, got)
			}
		})
	}
}

func TestProblemsNameTheirPath(t *testing.T) {
	r := avro.MustParse(rec(`{"name":"items","type":{"type":"array","items":{"type":"record","name":"I","fields":[{"name":"qty","type":"int"}]}}}`))
	w := avro.MustParse(rec(`{"name":"items","type":{"type":"array","items":{"type":"record","name":"I","fields":[{"name":"qty","type":"long"}]}}}`))
	ps := CanRead(r, w)
	if len(ps) != 1 || ps[0].Path != "items[].qty" || !strings.Contains(ps[0].Detail, "type long cannot be read as int") {
		t.Fatalf("got %v", ps)
	}
}

func gateCatalog(t *testing.T, files map[string]string) *Catalog {
	t.Helper()
	fsys := fstest.MapFS{}
	for k, v := range files {
		fsys[k] = &fstest.MapFile{Data: []byte(v)}
	}
	c, err := Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const (
	paidV1 = `{"type":"record","name":"Paid","namespace":"strata.shop","fields":[{"name":"amount","type":"int"}]}`
	// v2 adds a field with a default: FULL compatible.
	paidV2 = `{"type":"record","name":"Paid","namespace":"strata.shop","fields":[{"name":"amount","type":"int"},{"name":"currency","type":"string","default":"EUR"}]}`
	// v3 drops currency's default and renames amount with an alias.
	paidV3 = `{"type":"record","name":"Paid","namespace":"strata.shop","fields":[{"name":"cents","type":"int","aliases":["amount"]},{"name":"currency","type":"string"}]}`
)

func TestGate(t *testing.T) {
	ok := gateCatalog(t, map[string]string{"shop/Paid.v1.avsc": paidV1, "shop/Paid.v2.avsc": paidV2})
	if vs := ok.Check(nil); len(vs) != 0 {
		t.Fatalf("a compatible v2 was refused: %v", vs)
	}
	bad := gateCatalog(t, map[string]string{"shop/Paid.v1.avsc": paidV1, "shop/Paid.v2.avsc": paidV2, "shop/Paid.v3.avsc": paidV3})
	vs := bad.Check(nil)
	var msgs []string
	for _, v := range vs {
		msgs = append(msgs, v.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{
		// backward against v1 (transitive): currency has no default now.
		"shop/Paid.v3.avsc breaks FULL_TRANSITIVE: v3 cannot read what v1 (shop/Paid.v1.avsc) wrote:\n    currency: field added without a default",
		// forward against v2: v2 readers need amount, renamed away.
		"shop/Paid.v3.avsc breaks FULL_TRANSITIVE: readers on v2 (shop/Paid.v2.avsc) cannot read what v3 writes:\n    amount: field removed (or renamed), and it has no default in v2",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("violations lack %q:\n%s", want, all)
		}
	}
	// Not transitive: only v2→v3 is checked.
	modes := gateCatalog(t, map[string]string{"shop/Paid.v1.avsc": paidV1, "shop/Paid.v2.avsc": paidV2, "shop/Paid.v3.avsc": paidV3,
		"compatibility.yaml": "default: BACKWARD\n"})
	if vs := modes.Check(nil); len(vs) != 0 {
		t.Errorf("BACKWARD (v3 reads v2: alias for amount, currency present): %v", vs)
	}
	none := gateCatalog(t, map[string]string{"shop/Paid.v1.avsc": paidV1, "shop/Paid.v2.avsc": paidV3,
		"compatibility.yaml": "subjects:\n  shop/Paid: NONE\n"})
	if vs := none.Check(nil); len(vs) != 0 {
		t.Errorf("NONE: %v", vs)
	}
	// An upcaster between v2 and v3 exempts the pairs it covers.
	if vs := bad.Check(func(s string, from int) bool { return s == "shop/Paid" && from == 2 }); len(vs) != 0 {
		t.Errorf("with an upcaster from v2: %v", vs)
	}
}

func TestModesFileErrors(t *testing.T) {
	_, err := Load(fstest.MapFS{
		"shop/Paid.v1.avsc":  {Data: []byte(paidV1)},
		"compatibility.yaml": {Data: []byte("default: SIDEWAYS\nsubjects:\n  shop/Nope: FULL\n  shop/Paid: BACKWARDS\n")},
	})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{`compatibility.yaml, line 1: default "SIDEWAYS" is not a mode`, "compatibility.yaml, line 3: subject shop/Nope has no .avsc files", `compatibility.yaml, line 4: subject shop/Paid: "BACKWARDS" is not a mode`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	_, err = Load(fstest.MapFS{"compatibility.yaml": {Data: []byte("defualt: FULL\n")}})
	if err == nil || !strings.Contains(err.Error(), "compatibility.yaml, line 1: field defualt not found") {
		t.Fatalf("unknown key: %v", err)
	}
	for yml, want := range map[string]string{
		"default: FULL\nsubjects:\n  shop/Paid: [BACKWARD\n": "compatibility.yaml, line 3: did not find expected ',' or ']'",
		"default: FULL\n\tsubjects: {}\n":                    "compatibility.yaml, line 2: found a tab character",
		"default: FULL\nsubjects: {shop/Paid: FULL}\nx: 1\n": "compatibility.yaml, line 3: field x not found",
		"default: FUL\xc9\n":                                 "compatibility.yaml, line 1, column 13: not valid UTF-8",
	} {
		_, err = Load(fstest.MapFS{"shop/Paid.v1.avsc": {Data: []byte(paidV1)}, "compatibility.yaml": {Data: []byte(yml)}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", yml, err, want)
		}
	}
}

func TestDiff(t *testing.T) {
	got := Diff(avro.MustParse(paidV2), avro.MustParse(paidV3))
	want := []string{
		"~ cents: renamed from amount (aliases [amount])",
		`~ currency: default "EUR" → none`,
		// order: fields of the new version, then removals
	}
	if len(got) != len(want) {
		t.Fatalf("diff = %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("diff[%d] = %q, want %q", i, got[i], want[i])
		}
	}
	got = Diff(avro.MustParse(paidV1), avro.MustParse(paidV2))
	if len(got) != 1 || got[0] != `+ currency: string (default "EUR")` {
		t.Fatalf("diff v1 v2 = %q", got)
	}
	got = Diff(avro.MustParse(paidV2), avro.MustParse(paidV1))
	if len(got) != 1 || got[0] != `- currency: string (default "EUR")` {
		t.Fatalf("diff v2 v1 = %q", got)
	}
	got = Diff(avro.MustParse(rec(`{"name":"a","type":"int"}`)), avro.MustParse(rec(`{"name":"a","type":"long"}`)))
	if len(got) != 1 || got[0] != "~ a: type int → long" {
		t.Fatalf("diff type = %q", got)
	}
}
