package e2e

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testSnapshotsAndRestore: snapshots are written every N events in the
// command's transaction, and a node with an empty data directory restores
// from them plus the events after; for every N the result equals a full
// replay, and time travel, history and deduplication are intact.
func testSnapshotsAndRestore(t *testing.T, b *broker) {
	for _, every := range []int{1, 3, 100} {
		t.Run(fmt.Sprintf("every %d", every), func(t *testing.T) {
			ns := namespace()
			names := kafka.Names{Namespace: ns}
			s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir(), snapshotEvery: every})
			s.send(t, "acc-s", "OpenAccount", `{"owner":"sam","initial_balance":0}`)
			s.send(t, "acc-t", "OpenAccount", `{"owner":"tia","initial_balance":5}`)
			balance := 0
			var last map[string]any
			for i := 1; i <= 10; i++ {
				body := fmt.Sprintf(`{"type":"Deposit","data":{"amount":%d},"command_id":"dep-%d"}`, i, i)
				if code := s.do(t, "POST", "/v1/commands/account/acc-s", body, &last); code != 200 {
					t.Fatalf("deposit %d: %d %v", i, code, last)
				}
				balance += i
			}
			s.stop(t)
			snaps := readAll(t, b, names.Snapshots("account"), kgo.ReadCommitted())
			var versions []string
			for _, r := range snaps {
				if string(r.Key) == "acc-s" {
					versions = append(versions, header(r, "strata-aggregate-version"))
					if header(r, "strata-events-offset") == "" || r.Value[0] != 0xC3 {
						t.Errorf("snapshot without events offset or not single-object: %v", r.Headers)
					}
				}
			}
			var want []string
			for v := every; v <= 11; v += every {
				want = append(want, strconv.Itoa(v))
			}
			if fmt.Sprint(versions) != fmt.Sprint(want) {
				t.Fatalf("snapshots of acc-s at versions %v, want %v", versions, want)
			}

			s = startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir(), snapshotEvery: every})
			var agg accountState
			if code := s.do(t, "GET", "/v1/aggregates/account/acc-s?position="+last["position"].(string), "", &agg); code != 200 || agg.Version != 11 || agg.State.Balance != balance {
				t.Fatalf("restored: %d %+v, want version 11 balance %d", code, agg, balance)
			}
			for v := 1; v <= 11; v++ {
				if code := s.do(t, "GET", fmt.Sprintf("/v1/aggregates/account/acc-s?version=%d", v), "", &agg); code != 200 || agg.State.Balance != (v-1)*v/2 {
					t.Fatalf("time travel to %d: %d %+v, want balance %d", v, code, agg, (v-1)*v/2)
				}
			}
			var hist struct{ Events []struct{ Version int } }
			if s.do(t, "GET", "/v1/aggregates/account/acc-s/events", "", &hist); len(hist.Events) != 11 {
				t.Fatalf("history after restore has %d events, want 11", len(hist.Events))
			}
			var again map[string]any
			s.do(t, "POST", "/v1/commands/account/acc-s", `{"type":"Deposit","data":{"amount":5},"command_id":"dep-5"}`, &again)
			if again["status"] != "accepted" || num(again["version"]) != 6 {
				t.Fatalf("a command resent after restore: %v, want its original result (version 6)", again)
			}
			code, res := s.send(t, "acc-s", "Withdraw", fmt.Sprintf(`{"amount":%d}`, balance))
			if code != 200 || num(res["version"]) != 12 {
				t.Fatalf("withdraw after restore: %d %v", code, res)
			}
			if code := s.do(t, "GET", "/v1/aggregates/account/acc-t", "", &agg); code != 200 || agg.State.Balance != 5 {
				t.Fatalf("acc-t after restore: %d %+v", code, agg)
			}
		})
	}
}
