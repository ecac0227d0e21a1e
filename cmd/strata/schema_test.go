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
	// A broken file is named.
	dir = copySchemas(t, map[string]string{"account/MoneyDeposited.v2.avsc": `{"type":"record","name":"MoneyDeposited","fields":[`})
	if code, _, errs := cli(t, "schema", "check", "--dir", dir); code != exitFailure || !strings.Contains(errs, "account/MoneyDeposited.v2.avsc: not a valid Avro schema") {
		t.Fatalf("broken file: %d %s", code, errs)
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
