package bench

import (
	"context"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/devbroker"
	"github.com/twmb/franz-go/pkg/kgo"
)

// embedded returns an Env on a fresh embedded broker and a context bounded
// for a small scenario.
func embedded(t *testing.T) (context.Context, Env) {
	t.Helper()
	c, addr, err := devbroker.Start(devbroker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx, Env{Opts: []kgo.Opt{kgo.SeedBrokers(addr)}, Partitions: 4}
}

// TestRestoreScenario runs the restore scenario small: it must write the
// history, restore it into a cold node and report figures.
func TestRestoreScenario(t *testing.T) {
	ctx, env := embedded(t)
	for _, every := range []int{2, 100} {
		r, err := Restore(ctx, env, RestoreConfig{Aggregates: 500, Events: 3000, SnapshotEvery: every})
		if err != nil {
			t.Fatal(err)
		}
		if r.Seconds <= 0 || r.ThroughputPerS <= 0 || r.Extra["events"] != 3000 {
			t.Fatalf("figures: %+v", r)
		}
	}
}

// TestBaselinesAndCommands runs the baselines and the commands scenario
// small: every command gets its result, and figures are reported.
func TestBaselinesAndCommands(t *testing.T) {
	ctx, env := embedded(t)
	bl, err := RunBaselines(ctx, env, 5000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Result{bl.Produce, bl.Passthrough, bl.IntoPebble} {
		if r.ThroughputPerS <= 0 {
			t.Fatalf("baseline %s: %+v", r.Name, r)
		}
	}
	r, err := Commands(ctx, env, CommandsConfig{Aggregates: 200, Commands: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if r.ThroughputPerS <= 0 || r.P50ms <= 0 || r.P99ms < r.P50ms || r.Extra["commands"] != 1200 {
		t.Fatalf("commands: %+v", r)
	}
}
