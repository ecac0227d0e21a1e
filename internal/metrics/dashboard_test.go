package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// described returns the name and labels of every metric Strata's own
// collectors describe. A Desc shows them only in its String form.
func described(t *testing.T, m *Metrics) map[string][]string {
	t.Helper()
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range m.strata {
			c.Describe(ch)
		}
		close(ch)
	}()
	re := regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)
	out := map[string][]string{}
	for d := range ch {
		g := re.FindStringSubmatch(d.String())
		if g == nil {
			t.Fatalf("cannot read the name of %s", d)
		}
		out[g[1]] = strings.FieldsFunc(g[2], func(r rune) bool { return r == ',' })
	}
	return out
}

// TestDashboardQueriesExistingMetrics: the Grafana dashboard in compose/
// queries only metrics a node exports, grouped by labels they have, so it
// cannot go stale silently when a metric is renamed.
func TestDashboardQueriesExistingMetrics(t *testing.T) {
	m := New()
	strata := described(t, m)
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	runtime := map[string]bool{} // the Go and process collectors', always present
	for _, mf := range mfs {
		runtime[mf.GetName()] = true
	}
	raw, err := os.ReadFile("../../compose/grafana/dashboards/strata.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	name := regexp.MustCompile(`\b((?:strata|process|go)_[a-z_]+)\{`)
	by := regexp.MustCompile(`by \(([^)]*)\)`)
	used := map[string]bool{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			names := name.FindAllStringSubmatch(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: %q queries no metric", p.Title, tg.Expr)
			}
			if !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %q: %q ignores the instance variable", p.Title, tg.Expr)
			}
			for _, g := range names {
				n := g[1]
				if runtime[n] {
					continue
				}
				base := n
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(n, suffix); ok && strata[b] != nil {
						base = b
					}
				}
				labels, ok := strata[base]
				if !ok {
					t.Errorf("panel %q queries %s, which no collector exports", p.Title, n)
					continue
				}
				used[base] = true
				for _, grp := range by.FindAllStringSubmatch(tg.Expr, -1) {
					for _, l := range strings.Split(grp[1], ",") {
						l = strings.TrimSpace(l)
						if l != "le" && l != "instance" && !slices.Contains(labels, l) {
							t.Errorf("panel %q groups %s by %q; its labels are %v", p.Title, n, l, labels)
						}
					}
				}
			}
		}
	}
	for n := range strata {
		if !used[n] {
			t.Errorf("no panel shows %s", n)
		}
	}
}

// TestREADMEListsTheMetrics: the README's table names every metric, and
// only metrics that exist.
func TestREADMEListsTheMetrics(t *testing.T) {
	strata := described(t, New())
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, g := range regexp.MustCompile("(?m)^\\| `(strata_[a-z_]+)` \\|").FindAllStringSubmatch(string(raw), -1) {
		listed[g[1]] = true
		if strata[g[1]] == nil {
			t.Errorf("the README lists %s, which no collector exports", g[1])
		}
	}
	for n := range strata {
		if !listed[n] {
			t.Errorf("the README's metrics table leaves out %s", n)
		}
	}
}
