package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// copySchemas copies the repository's schemas/ into a temporary directory
// and adds the extra files.
func copySchemas(t *testing.T, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	src := "../../schemas"
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".avsc") || strings.HasSuffix(p, ".yaml")) {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range extra {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestSchemaCheck(t *testing.T) {
	if code, out, errs := cli(t, "schema", "check"); code != 0 || !strings.Contains(out, "every version satisfies its compatibility mode") {
		t.Fatalf("the shipped schemas: %d %s %s", code, out, errs)
	}
	if code, out, errs := cli(t, "schema", "check", "--dir", "../../schemas"); code != 0 {
		t.Fatalf("the working tree's schemas: %d %s %s", code, out, errs)
	}
	for _, tc := range []struct {
		name, file, body string
		want             []string
	}{
		{"field removed without default", "account/MoneyDeposited.v2.avsc",
			`{"type":"record","name":"MoneyDeposited","namespace":"strata.account","fields":[{"name":"cents","type":"long"}]}`,
			[]string{"account/MoneyDeposited.v2.avsc breaks FULL_TRANSITIVE", "v2 cannot read what v1 (account/MoneyDeposited.v1.avsc) wrote", "cents: field added without a default",
				"readers on v1 (account/MoneyDeposited.v1.avsc) cannot read what v2 writes", "amount: field removed (or renamed), and it has no default in v1"}},
		{"type narrowed", "account/MoneyDeposited.v2.avsc",
			`{"type":"record","name":"MoneyDeposited","namespace":"strata.account","fields":[{"name":"amount","type":"int"}]}`,
			[]string{"amount: type changed in a way that is not a promotion", "type long cannot be read as int"}},
		{"type widened (forward breaks)", "account/MoneyDeposited.v2.avsc",
			`{"type":"record","name":"MoneyDeposited","namespace":"strata.account","fields":[{"name":"amount","type":"double"}]}`,
			[]string{"readers on v1", "amount: type widened or changed", "type double cannot be read as long"}},
		{"field added without default", "account/Deposit.v2.avsc",
			`{"type":"record","name":"Deposit","namespace":"strata.account","fields":[{"name":"amount","type":"long"},{"name":"memo","type":"string"}]}`,
			[]string{"account/Deposit.v2.avsc breaks FULL_TRANSITIVE", "memo: field added without a default, so v1 data cannot be read"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copySchemas(t, map[string]string{tc.file: tc.body})
			code, out, errs := cli(t, "schema", "check", "--dir", dir)
			if code != exitFailure {
				t.Fatalf("exit %d: %s %s", code, out, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("output lacks %q:\n%s", w, errs)
				}
			}
		})
	}
	// A compatible change passes.
	dir := copySchemas(t, map[string]string{"account/MoneyDeposited.v2.avsc": `{"type":"record","name":"MoneyDeposited","namespace":"strata.account","fields":[{"name":"amount","type":"long"},{"name":"memo","type":"string","default":""}]}`})
	if code, out, errs := cli(t, "schema", "check", "--dir", dir); code != 0 {
		t.Fatalf("a compatible v2: %d %s %s", code, out, errs)
	}
}

// TestSchemaCheckMalformedFiles: a directory with a broken .avsc or
// compatibility.yaml is refused, each problem naming its file and, for
// syntax, its line and column.
func TestSchemaCheckMalformedFiles(t *testing.T) {
	deposit := func(fields string) string {
		return `{"type":"record","name":"Deposit","namespace":"strata.account","fields":[` + fields + `]}`
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"JSON cut short", map[string]string{"account/Deposit.v2.avsc": `{"type":"record","name":"Deposit","fields":[`},
			[]string{"account/Deposit.v2.avsc, line 1, column 45: not valid JSON: unexpected EOF"}},
		{"a missing comma on line 4", map[string]string{"account/Deposit.v2.avsc": "{\n  \"type\": \"record\",\n  \"name\": \"Deposit\"\n  \"fields\": []\n}\n"},
			[]string{"account/Deposit.v2.avsc, line 4, column 3: not valid JSON: invalid character '\"' after object key:value pair"}},
		{"text after the schema", map[string]string{"account/Deposit.v2.avsc": deposit(`{"name":"amount","type":"long"}`) + "\n}\n"},
			[]string{"account/Deposit.v2.avsc, line 2, column 1: not valid JSON: data after the schema"}},
		{"not UTF-8", map[string]string{"account/Deposit.v2.avsc": deposit(`{"name":"amount","type":"long","doc":"caf` + "\xe9" + `"}`)},
			[]string{"account/Deposit.v2.avsc, line 1, column 115: not valid UTF-8"}},
		{"an empty file", map[string]string{"account/Deposit.v2.avsc": "\n"},
			[]string{"account/Deposit.v2.avsc: the file is empty"}},
		{"an unknown type", map[string]string{"account/Deposit.v2.avsc": deposit(`{"name":"amount","type":"money"}`)},
			[]string{"account/Deposit.v2.avsc: not a valid Avro schema: avro: unknown type: money"}},
		{"a default of the wrong type", map[string]string{"account/Deposit.v2.avsc": deposit(`{"name":"amount","type":"long"},{"name":"memo","type":"string","default":5}`)},
			[]string{"account/Deposit.v2.avsc: not a valid Avro schema", "memo"}},
		{"not a record", map[string]string{"account/Deposit.v2.avsc": `{"type":"enum","name":"Deposit","namespace":"strata.account","symbols":["A"]}`},
			[]string{"account/Deposit.v2.avsc: top-level type must be a record, is enum"}},
		{"the wrong record name", map[string]string{"account/Deposit.v2.avsc": `{"type":"record","name":"Withdraw","namespace":"strata.account","fields":[{"name":"amount","type":"long"}]}`},
			[]string{`account/Deposit.v2.avsc: record full name is "strata.account.Withdraw", want "strata.account.Deposit"`}},
		{"a bad file name", map[string]string{"account/Deposit-v2.avsc": deposit(`{"name":"amount","type":"long"}`)},
			[]string{"account/Deposit-v2.avsc: file name must be <Name>.v<N>.avsc"}},
		{"a version skipped", map[string]string{"account/Deposit.v3.avsc": deposit(`{"name":"amount","type":"long"},{"name":"memo","type":"string","default":""}`)},
			[]string{"account/Deposit.v3.avsc: version 3 follows version 1"}},
		{"a version that changes nothing", map[string]string{"account/Deposit.v2.avsc": deposit(`{"name":"amount","type":"long","doc":"only the doc changed"}`)},
			[]string{"account/Deposit.v2.avsc: same canonical schema as account/Deposit.v1.avsc"}},
		{"compatibility.yaml: an unknown mode", map[string]string{"compatibility.yaml": "default: FULL_TRANSITIVE\nsubjects:\n  account/Deposit: SIDEWAYS\n"},
			[]string{`compatibility.yaml, line 3: subject account/Deposit: "SIDEWAYS" is not a mode`}},
		{"compatibility.yaml: a syntax error", map[string]string{"compatibility.yaml": "default: FULL_TRANSITIVE\nsubjects:\n  account/Deposit: [FULL\n"},
			[]string{"compatibility.yaml, line 3: did not find expected ',' or ']'"}},
		{"compatibility.yaml: a misspelt key", map[string]string{"compatibility.yaml": "default: FULL_TRANSITIVE\nsubject:\n  account/Deposit: FULL\n"},
			[]string{"compatibility.yaml, line 2: field subject not found"}},
		{"two broken files at once", map[string]string{"account/Deposit.v2.avsc": "{", "order/AddItem.v2.avsc": "[]"},
			[]string{"account/Deposit.v2.avsc, line 1, column 2: not valid JSON", "order/AddItem.v2.avsc: top-level type must be a record, is union"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copySchemas(t, tc.files)
			code, out, errs := cli(t, "schema", "check", "--dir", dir)
			if code != exitFailure || !strings.Contains(errs, "the catalog in "+dir+" does not load") {
				t.Fatalf("exit %d: %s %s", code, out, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("output lacks %q:\n%s", w, errs)
				}
			}
		})
	}
	missing := filepath.Join(t.TempDir(), "nowhere")
	if code, _, errs := cli(t, "schema", "check", "--dir", missing); code != exitUsage || !strings.Contains(errs, "--dir "+missing+": not a directory") {
		t.Fatalf("a missing --dir: %d %s", code, errs)
	}
}

func TestSchemaListAndDiff(t *testing.T) {
	code, out, _ := cli(t, "schema", "list")
	if code != 0 || !strings.Contains(out, "account/AccountOpened   v3") || !strings.Contains(out, "BACKWARD_TRANSITIVE") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	code, out, _ = cli(t, "schema", "diff", "account/AccountOpened", "1", "3")
	for _, want := range []string{"~ holder: renamed from owner", `+ currency: string (default "EUR")`, "v3 reads v1 data (backward): yes", "v1 reads v3 data (forward):  no"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("diff lacks %q: %d\n%s", want, code, out)
		}
	}
	if code, _, errs := cli(t, "schema", "diff", "account/Nope", "1", "2"); code != exitNotFound || !strings.Contains(errs, "no subject") {
		t.Fatalf("unknown subject: %d %s", code, errs)
	}
	if code, _, errs := cli(t, "schema", "diff", "account/AccountOpened", "1", "9"); code != exitUsage || !strings.Contains(errs, "versions 1 to 3") {
		t.Fatalf("unknown version: %d %s", code, errs)
	}
}

func TestSchemaRegister(t *testing.T) {
	fake := srfake.New()
	defer fake.Close()
	code, out, errs := cli(t, "schema", "register", "--schema-registry", fake.URL())
	if code != 0 || !strings.Contains(out, "strata.account.MoneyWithdrawn") || !strings.Contains(out, "NONE") {
		t.Fatalf("register: %d %s %s", code, out, errs)
	}
	if code, _, errs := cli(t, "schema", "register"); code != exitUsage || !strings.Contains(errs, "--schema-registry is required") {
		t.Fatalf("no URL: %d %s", code, errs)
	}
}
