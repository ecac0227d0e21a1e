package e2e

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/projections"
	"github.com/strata-es/strata/projections/accounts"
)

// testParking: an event a projection cannot apply is retried, then its
// aggregate is parked with its later events while the other aggregates
// flow; after a fix, a retry replays them in order.
func testParking(t *testing.T, b *broker) {
	var fixed atomic.Bool
	type row struct {
		ID    string `json:"id"`
		Total int64  `json:"total"`
	}
	buggy := projections.Projection{
		Name:       "buggy",
		Aggregates: []string{account.Name},
		Apply: func(tx projections.Tx, ev projections.Event) error {
			var r row
			if _, err := tx.Get(ev.AggregateID, &r); err != nil {
				return err
			}
			r.ID = ev.AggregateID
			if d, ok := ev.Data.(account.Deposited); ok {
				if d.Amount == 13 && !fixed.Load() {
					return errors.New("unlucky 13")
				}
				r.Total += d.Amount
			}
			return tx.Put(ev.AggregateID, r)
		},
	}
	s := startNode(t, b, nodeOpts{ns: namespace(), dataDir: t.TempDir(), projections: []projections.Projection{accounts.Projection, buggy}})
	s.send(t, "acc-ok", "OpenAccount", `{"owner":"ok","initial_balance":0}`)
	s.send(t, "acc-bad", "OpenAccount", `{"owner":"bad","initial_balance":0}`)
	s.send(t, "acc-bad", "Deposit", `{"amount":13}`)
	s.send(t, "acc-bad", "Deposit", `{"amount":1}`)
	_, res := s.send(t, "acc-ok", "Deposit", `{"amount":5}`)

	var r row
	if code := s.do(t, "GET", "/v1/views/buggy/acc-ok?position="+res["position"].(string), "", &r); code != 200 || r.Total != 5 {
		t.Fatalf("the healthy aggregate: %d %+v", code, r)
	}
	var st struct {
		Projections []struct {
			Name   string
			Parked []struct {
				ID     string
				Events int
				Reason string
			}
		}
	}
	eventually(t, 20*time.Second, func() bool {
		st.Projections = nil // decode afresh: omitted fields would keep old values
		s.do(t, "GET", "/v1/projections", "", &st)
		for _, p := range st.Projections {
			if p.Name == "buggy" && len(p.Parked) == 1 && p.Parked[0].ID == "acc-bad" && p.Parked[0].Events == 2 &&
				strings.Contains(p.Parked[0].Reason, "unlucky 13") {
				return true
			}
		}
		return false
	}, func() string { return fmt.Sprintf("acc-bad not parked with its 2 events: %+v", st) })
	if code := s.do(t, "GET", "/v1/views/buggy/acc-bad", "", &r); code != 200 || r.Total != 0 {
		t.Fatalf("the parked aggregate's row moved: %d %+v", code, r)
	}
	// Fix, retry: the parked events apply in order.
	fixed.Store(true)
	var out struct{ Unparked int }
	if code := s.do(t, "POST", "/v1/projections/buggy/retry", "", &out); code != 200 || out.Unparked != 1 {
		t.Fatalf("retry: %d %+v", code, out)
	}
	if code := s.do(t, "GET", "/v1/views/buggy/acc-bad", "", &r); code != 200 || r.Total != 14 {
		t.Fatalf("after the retry: %d %+v", code, r)
	}
	st.Projections = nil // decode afresh: omitted fields would keep old values
	s.do(t, "GET", "/v1/projections", "", &st)
	for _, p := range st.Projections {
		if len(p.Parked) > 0 {
			t.Fatalf("still parked after the retry: %+v", p)
		}
	}
	// Later events of the aggregate flow normally again.
	_, res = s.send(t, "acc-bad", "Deposit", `{"amount":2}`)
	if code := s.do(t, "GET", "/v1/views/buggy/acc-bad?position="+res["position"].(string), "", &r); code != 200 || r.Total != 16 {
		t.Fatalf("after unparking: %d %+v", code, r)
	}
}
