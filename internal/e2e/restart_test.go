package e2e

import (
	"fmt"
	"testing"
	"time"
)

type accountState struct {
	Version int
	State   struct {
		Owner   string
		Balance int
	}
}

type accountRow struct {
	Owner   string
	Balance int
	Version int
}

// testRestart: a node stopped and started again on the same data directory
// (and, on the embedded broker, the broker too) serves the same state and
// view, and new commands continue the version sequence.
func testRestart(t *testing.T, b *broker) {
	ns, dir := namespace(), t.TempDir()
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: dir})
	s.send(t, "acc-r", "OpenAccount", `{"owner":"rui","initial_balance":100}`)
	s.send(t, "acc-r", "Deposit", `{"amount":23}`)
	_, res := s.send(t, "acc-r", "Withdraw", `{"amount":3}`)
	var before accountRow
	s.do(t, "GET", "/v1/views/accounts/acc-r?position="+res["position"].(string), "", &before)
	s.stop(t)
	if !b.external() {
		b.restart(t)
	}

	s = startNode(t, b, nodeOpts{ns: ns, dataDir: dir})
	var agg accountState
	if code := s.do(t, "GET", "/v1/aggregates/account/acc-r", "", &agg); code != 200 || agg.Version != 3 || agg.State.Balance != 120 {
		t.Fatalf("state after restart: %d %+v", code, agg)
	}
	var after accountRow
	if code := s.do(t, "GET", "/v1/views/accounts/acc-r", "", &after); code != 200 || after != before || after.Balance != 120 {
		t.Fatalf("view after restart: %d %+v, before %+v", code, after, before)
	}
	code, res := s.send(t, "acc-r", "Deposit", `{"amount":1}`)
	if code != 200 || num(res["version"]) != 4 {
		t.Fatalf("command after restart: %d %v", code, res)
	}
	if code := s.do(t, "GET", "/v1/views/accounts/acc-r?position="+res["position"].(string), "", &after); code != 200 || after.Balance != 121 || after.Version != 4 {
		t.Fatalf("view after the new command: %d %+v", code, after)
	}
}

// testRestoreIntoEmptyDataDir: a node with no local state rebuilds the
// aggregates, the event index, the command-ID deduplication and the views
// from the events topic alone.
func testRestoreIntoEmptyDataDir(t *testing.T, b *broker) {
	ns := namespace()
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir()})
	const n = 20
	for i := range n {
		s.send(t, fmt.Sprintf("acc-%d", i), "OpenAccount", fmt.Sprintf(`{"owner":"o%d","initial_balance":%d}`, i, i*10))
	}
	var first map[string]any
	s.do(t, "POST", "/v1/commands/account/acc-3", `{"type":"Deposit","data":{"amount":5},"command_id":"once"}`, &first)
	var refused map[string]any
	if code := s.do(t, "POST", "/v1/commands/account/acc-5", `{"type":"Withdraw","data":{"amount":1000},"command_id":"refused-once"}`, &refused); code != 422 {
		t.Fatalf("withdrawal over the balance: %d %v", code, refused)
	}
	s.stop(t)

	s = startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir()})
	// The node catches up the partitions it is assigned without waiting
	// for a command.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var agg accountState
		if code := s.do(t, "GET", "/v1/aggregates/account/acc-7", "", &agg); code == 200 {
			if agg.State.Balance != 70 {
				t.Fatalf("acc-7 restored as %+v", agg)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("acc-7 not restored within 20s of start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Its answer proves the state was restored before deciding.
	code, res := s.send(t, "acc-3", "Withdraw", `{"amount":35}`)
	if code != 200 || num(res["version"]) != 3 {
		t.Fatalf("withdraw after restore: %d %v (want version 3: open, deposit, withdraw)", code, res)
	}
	for i := range n {
		var agg accountState
		if code := s.do(t, "GET", fmt.Sprintf("/v1/aggregates/account/acc-%d", i), "", &agg); code != 200 {
			t.Fatalf("acc-%d: %d", i, code)
		}
		want := i * 10
		if i == 3 {
			want = 0
		}
		if agg.State.Balance != want || agg.State.Owner != fmt.Sprintf("o%d", i) {
			t.Errorf("acc-%d restored as %+v, want balance %d", i, agg, want)
		}
	}
	var again map[string]any
	s.do(t, "POST", "/v1/commands/account/acc-3", `{"type":"Deposit","data":{"amount":5},"command_id":"once"}`, &again)
	if again["status"] != "accepted" || num(again["version"]) != 2 || again["command_id"] != "once" {
		t.Fatalf("resent command after restore = %v, want its original outcome (version 2)", again)
	}
	// Rebuilt from the events topic, the outcome still says where its
	// events are.
	if again["position"] == nil || again["position"] != first["position"] {
		t.Fatalf("resent command after restore: position %v, want the original %v", again["position"], first["position"])
	}
	// A refused command leaves no event; its outcome still survives the
	// empty data directory (read back from the results topic), so a
	// resend after the balance grew is not decided again.
	if code, res := s.send(t, "acc-5", "Deposit", `{"amount":5000}`); code != 200 {
		t.Fatalf("deposit: %d %v", code, res)
	}
	var resent map[string]any
	if code := s.do(t, "POST", "/v1/commands/account/acc-5", `{"type":"Withdraw","data":{"amount":1000},"command_id":"refused-once"}`, &resent); code != 422 ||
		resent["status"] != "rejected" || resent["version"] != refused["version"] {
		t.Fatalf("a refused command resent after a restore on an empty data directory: %d %v, want its original outcome %v", code, resent, refused)
	}
	var agg accountState
	if s.do(t, "GET", "/v1/aggregates/account/acc-3", "", &agg); agg.Version != 3 {
		t.Fatalf("the resent command was applied again: version %d", agg.Version)
	}
	var row accountRow
	if code := s.do(t, "GET", "/v1/views/accounts/acc-3?position="+res["position"].(string), "", &row); code != 200 || row.Balance != 0 || row.Version != 3 {
		t.Fatalf("view rebuilt from the events topic: %d %+v", code, row)
	}
}
