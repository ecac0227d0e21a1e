package node

import (
	"strings"
	"testing"

	"github.com/strata-es/strata/projections"
)

// TestProjectionReady: a projection is ready when it runs (a rebuild
// beside it does not matter), no partition stopped, and it is within its
// lag bound; otherwise the reason says which and what to do.
func TestProjectionReady(t *testing.T) {
	for _, tc := range []struct {
		name   string
		st     projections.Status
		maxLag int64
		ok     bool
		why    string
	}{
		{"running, caught up", projections.Status{State: "running"}, 100, true, "ok: 0 offsets behind"},
		{"running, at the bound", projections.Status{State: "running", Lag: 100}, 100, true, "ok: 100 offsets behind"},
		{"running, past the bound", projections.Status{State: "running", Lag: 101}, 100, false, "101 offsets behind its topics, more than the bound of 100 (--projection-max-lag)"},
		{"no bound", projections.Status{State: "running", Lag: 1 << 40}, -1, true, "ok"},
		{"rebuilding beside", projections.Status{State: "running, rebuilding"}, 100, true, "ok"},
		{"starting", projections.Status{State: "starting"}, 100, false, "starting (reading its topics' end offsets; see the broker check)"},
		{"failed", projections.Status{State: "failed", Error: "projection accounts: boom"}, 100, false, "failed: projection accounts: boom"},
		{"a sink down", projections.Status{State: "running", Sinks: []projections.SinkStatus{{Name: "postgres", Up: true}, {Name: "search", Error: "sink search: connection refused"}}}, 100, false, "sink search is down since"},
		{"sinks up", projections.Status{State: "running", Sinks: []projections.SinkStatus{{Name: "postgres", Up: true}}}, 100, true, "ok"},
		{"a partition stopped", projections.Status{State: "running", Failed: map[string]string{"t/0": "x"}}, 100, false, "1 partition(s) stopped at an event (see /v1/status)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := projectionReady(tc.st, tc.maxLag)
			if ok != tc.ok || !strings.Contains(why, tc.why) {
				t.Fatalf("ready %v %q, want %v and %q", ok, why, tc.ok, tc.why)
			}
		})
	}
}
