// Package lint holds tests that enforce the project's import rules.
package lint

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/strata-es/strata"

// TestImportRules: dependencies point inward. Domains and the decider
// framework are pure (standard library and each other only); nothing
// imports cmd/; the schema catalog does not depend on the runtime (only on
// internal/yamlerr, a leaf that fixes YAML error positions).
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}:{{join .Imports " "}}`, module+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		for _, imp := range strings.Fields(imports) {
			internal := strings.HasPrefix(imp, module)
			std := !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".")
			switch {
			case strings.HasPrefix(imp, module+"/cmd"):
				t.Errorf("%s imports %s: nothing imports cmd/", pkg, imp)
			case strings.HasPrefix(pkg, module+"/aggregates") && !strings.HasSuffix(pkg, "aggregatetest") &&
				!(std || internal && strings.HasPrefix(imp, module+"/aggregates")):
				t.Errorf("%s imports %s: domains are pure (standard library and aggregates/ only)", pkg, imp)
			case strings.HasPrefix(pkg, module+"/schemas") && internal && !strings.HasPrefix(imp, module+"/aggregates") &&
				imp != module+"/internal/yamlerr": // a leaf helper of YAML error positions, no runtime
				t.Errorf("%s imports %s: the schema catalog must not depend on the runtime", pkg, imp)
			}
			checked++
		}
	}
	if checked < 50 {
		t.Fatalf("checked only %d imports: is go list seeing the module?", checked)
	}
}
