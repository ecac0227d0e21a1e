package e2e

import (
	"fmt"
	"testing"
	"time"
)

// testRebuild: a view rebuilt from offset 0 beside the live one is swapped
// in when it has caught up; the live one serves meanwhile, and the new one
// keeps following the events after the swap.
func testRebuild(t *testing.T, b *broker) {
	s := startNode(t, b, nodeOpts{ns: namespace(), dataDir: t.TempDir()})
	for i := range 30 {
		s.send(t, "acc-rb-"+fmt.Sprint(i), "OpenAccount", fmt.Sprintf(`{"owner":"o","initial_balance":%d}`, i))
	}
	_, res := s.send(t, "acc-rb-7", "Deposit", `{"amount":1000}`)
	count := func() int {
		var page struct{ Rows []any }
		if code := s.do(t, "GET", "/v1/views/accounts?limit=1000&position="+res["position"].(string), "", &page); code != 200 {
			t.Fatalf("query: %d", code)
		}
		return len(page.Rows)
	}
	if n := count(); n != 30 {
		t.Fatalf("%d rows before the rebuild", n)
	}
	var started map[string]any
	if code := s.do(t, "POST", "/v1/projections/accounts/rebuild", "", &started); code != 202 {
		t.Fatalf("rebuild: %d %v", code, started)
	}
	if n := count(); n != 30 {
		t.Fatalf("%d rows during the rebuild: the live copy must keep serving", n)
	}
	var st struct {
		Projections []struct {
			Name       string
			Generation int
			Rebuild    *struct{ Done bool }
		}
	}
	eventually(t, 30*time.Second, func() bool {
		st.Projections = nil
		s.do(t, "GET", "/v1/projections", "", &st)
		for _, p := range st.Projections {
			if p.Name == "accounts" && p.Generation == 1 && p.Rebuild != nil && p.Rebuild.Done {
				return true
			}
		}
		return false
	}, func() string { return fmt.Sprintf("rebuild not swapped in: %+v", st) })
	if n := count(); n != 30 {
		t.Fatalf("%d rows after the swap", n)
	}
	var row accountRow
	if code := s.do(t, "GET", "/v1/views/accounts/acc-rb-7", "", &row); code != 200 || row.Balance != 1007 {
		t.Fatalf("rebuilt row: %d %+v", code, row)
	}
	_, res = s.send(t, "acc-rb-7", "Withdraw", `{"amount":7}`)
	if code := s.do(t, "GET", "/v1/views/accounts/acc-rb-7?position="+res["position"].(string), "", &row); code != 200 || row.Balance != 1000 {
		t.Fatalf("the new generation after the swap: %d %+v", code, row)
	}
	var again map[string]any
	if code := s.do(t, "POST", "/v1/projections/nope/rebuild", "", &again); code != 404 {
		t.Fatalf("rebuild of an unknown view: %d", code)
	}
}
