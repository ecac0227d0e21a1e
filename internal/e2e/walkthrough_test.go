package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func num(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// testHTTPWalkthrough is the README's curl walk-through, asserted.
func testHTTPWalkthrough(t *testing.T, b *broker) {
	s := startNode(t, b, nodeOpts{ns: namespace(), dataDir: t.TempDir()})

	code, res := s.send(t, "acc-1", "OpenAccount", `{"owner":"ada","initial_balance":1000}`)
	if code != 200 || res["aggregate_id"] != "acc-1" || num(res["version"]) != 1 || res["position"] == "" {
		t.Fatalf("open: %d %v", code, res)
	}
	evs := res["events"].([]any)
	if len(evs) != 1 || evs[0].(map[string]any)["type"] != "AccountOpened" {
		t.Fatalf("open events: %v", evs)
	}
	if code, res = s.send(t, "acc-1", "Deposit", `{"amount":500}`); code != 200 || num(res["version"]) != 2 {
		t.Fatalf("deposit: %d %v", code, res)
	}
	code, res = s.send(t, "acc-1", "Withdraw", `{"amount":200}`)
	if code != 200 || num(res["version"]) != 3 {
		t.Fatalf("withdraw: %d %v", code, res)
	}
	lastPosition := res["position"].(string)

	// Domain rejections: 422, no event written.
	code, res = s.send(t, "acc-1", "Withdraw", `{"amount":5000}`)
	if code != 422 || !strings.Contains(fmt.Sprint(res["error"]), "insufficient funds: balance 1300") || res["status"] != "rejected" {
		t.Fatalf("overdraft: %d %v", code, res)
	}
	if code, res = s.send(t, "acc-1", "OpenAccount", `{"owner":"bob","initial_balance":1}`); code != 422 || !strings.Contains(fmt.Sprint(res["error"]), "already exists") {
		t.Fatalf("second open: %d %v", code, res)
	}
	if code, res = s.send(t, "acc-2", "Deposit", `{"amount":1}`); code != 422 || !strings.Contains(fmt.Sprint(res["error"]), "does not exist") {
		t.Fatalf("deposit to missing account: %d %v", code, res)
	}

	var agg struct {
		ID      string
		Version int
		State   struct {
			Owner   string
			Balance int
		}
	}
	if code := s.do(t, "GET", "/v1/aggregates/account/acc-1", "", &agg); code != 200 || agg.ID != "acc-1" || agg.Version != 3 || agg.State.Balance != 1300 || agg.State.Owner != "ada" {
		t.Fatalf("state: %d %+v", code, agg)
	}

	var hist struct {
		Events []struct {
			Type    string
			Version int
			Data    map[string]any
		}
	}
	if code := s.do(t, "GET", "/v1/aggregates/account/acc-1/events", "", &hist); code != 200 {
		t.Fatalf("events: %d", code)
	}
	want := []string{"AccountOpened 1 1000", "MoneyDeposited 2 500", "MoneyWithdrawn 3 200"}
	if len(hist.Events) != len(want) {
		t.Fatalf("history has %d events, want %d: %+v", len(hist.Events), len(want), hist.Events)
	}
	for i, e := range hist.Events {
		amount := e.Data["amount"]
		if amount == nil {
			amount = e.Data["initial_balance"]
		}
		if got := fmt.Sprintf("%s %d %v", e.Type, e.Version, amount); got != want[i] {
			t.Errorf("event %d = %s, want %s", i, got, want[i])
		}
	}

	// Time travel through the event index.
	if code := s.do(t, "GET", "/v1/aggregates/account/acc-1?version=2", "", &agg); code != 200 || agg.Version != 2 || agg.State.Balance != 1500 {
		t.Fatalf("version=2: %d %+v", code, agg)
	}

	// The view, read after the last write with its position token.
	var row struct {
		ID      string
		Owner   string
		Balance int
		Version int
	}
	if code := s.do(t, "GET", "/v1/views/accounts/acc-1?position="+lastPosition, "", &row); code != 200 || row.Balance != 1300 || row.Version != 3 || row.Owner != "ada" {
		t.Fatalf("view: %d %+v", code, row)
	}
	if code := s.do(t, "GET", "/v1/views/accounts/acc-2", "", nil); code != 404 {
		t.Fatalf("view of an account never opened: %d", code)
	}
}

// testIdempotentCommandID: resending a command ID returns the first result
// and appends nothing.
func testIdempotentCommandID(t *testing.T, b *broker) {
	s := startNode(t, b, nodeOpts{ns: namespace(), dataDir: t.TempDir()})
	s.send(t, "acc-i", "OpenAccount", `{"owner":"ada","initial_balance":10}`)
	var first, again map[string]any
	body := `{"type":"Deposit","data":{"amount":5},"command_id":"dep-1"}`
	if code := s.do(t, "POST", "/v1/commands/account/acc-i", body, &first); code != 200 || num(first["version"]) != 2 {
		t.Fatalf("first: %d %v", code, first)
	}
	if code := s.do(t, "POST", "/v1/commands/account/acc-i", body, &again); code != 200 || mustJSON(t, again) != mustJSON(t, first) {
		t.Fatalf("resend answered %d %v, want the first result %v", code, again, first)
	}
	var agg struct{ Version int }
	if s.do(t, "GET", "/v1/aggregates/account/acc-i", "", &agg); agg.Version != 2 {
		t.Fatalf("version after resend = %d, want 2", agg.Version)
	}
	// expected_version: a stale one is a conflict with the actual version.
	var res map[string]any
	code := s.do(t, "POST", "/v1/commands/account/acc-i", `{"type":"Deposit","data":{"amount":5},"expected_version":1}`, &res)
	if code != 409 || res["status"] != "conflict" || num(res["version"]) != 2 {
		t.Fatalf("stale expected_version: %d %v", code, res)
	}
	if code := s.do(t, "POST", "/v1/commands/account/acc-i", `{"type":"Deposit","data":{"amount":5},"expected_version":2}`, &res); code != 200 || num(res["version"]) != 3 {
		t.Fatalf("matching expected_version: %d %v", code, res)
	}
}

// testDedupeWindow: a command ID is remembered for the dedupe window, and
// only for it. The window leaves room for a slow resend: on a loaded
// machine the round trip can take over a second.
func testDedupeWindow(t *testing.T, b *broker) {
	const window = 4 * time.Second
	s := startNode(t, b, nodeOpts{ns: namespace(), dataDir: t.TempDir(), dedupeWindow: window})
	s.send(t, "acc-dw", "OpenAccount", `{"owner":"dw","initial_balance":0}`)
	body := `{"type":"Deposit","data":{"amount":1},"command_id":"once-a-window"}`
	var res map[string]any
	s.do(t, "POST", "/v1/commands/account/acc-dw", body, &res)
	s.do(t, "POST", "/v1/commands/account/acc-dw", body, &res)
	if num(res["version"]) != 2 {
		t.Fatalf("resend within the window: %v, want the first result (version 2)", res)
	}
	time.Sleep(window + 1500*time.Millisecond)
	s.do(t, "POST", "/v1/commands/account/acc-dw", body, &res)
	if res["status"] != "accepted" || num(res["version"]) != 3 {
		t.Fatalf("resend after the window: %v, want a new command (version 3)", res)
	}
}
