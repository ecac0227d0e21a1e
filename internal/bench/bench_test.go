package bench

import (
	"context"
	"os"
	"strings"
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

// TestHTTPScenario: every posted command is answered 200, at a fixed rate
// and at the maximum, and the figures are reported.
func TestHTTPScenario(t *testing.T) {
	ctx, env := embedded(t)
	for _, rate := range []int{500, 0} {
		r, err := HTTP(ctx, env, HTTPConfig{Aggregates: 50, Commands: 600, Clients: 8, Rate: rate})
		if err != nil {
			t.Fatal(err)
		}
		if r.ThroughputPerS <= 0 || r.P50ms <= 0 || r.P99ms < r.P50ms || r.Extra["commands"] != 600 {
			t.Fatalf("http at %d/s: %+v", rate, r)
		}
		// At a fixed rate the run lasts at least as long as the schedule.
		if rate > 0 && r.Seconds < float64(600-1)/float64(rate) {
			t.Fatalf("http at %d/s took %.2f s, less than its schedule", rate, r.Seconds)
		}
	}
}

// TestProjectionScenario: the view catches up with the whole history.
func TestProjectionScenario(t *testing.T) {
	ctx, env := embedded(t)
	r, err := Projection(ctx, env, ProjectionConfig{Aggregates: 300, Events: 3000})
	if err != nil {
		t.Fatal(err)
	}
	if r.ThroughputPerS <= 0 || r.Extra["events"] != 3000 {
		t.Fatalf("figures: %+v", r)
	}
}

// TestLoadScenario: the aggregate reaches its last version, and loading it
// from a snapshot replays fewer events than from the start.
func TestLoadScenario(t *testing.T) {
	ctx, env := embedded(t)
	for _, every := range []int{10, -1} {
		r, err := Load(ctx, env, LoadConfig{Events: 300, SnapshotEvery: every, Loads: 20})
		if err != nil {
			t.Fatal(err)
		}
		if r.P50ms <= 0 || r.P99ms < r.P50ms || r.Extra["events"] != 300 {
			t.Fatalf("snapshot every %d: %+v", every, r)
		}
	}
}

// TestMemoryNeedsTheBinary: without a strata binary to run, the memory
// scenario says so instead of measuring the wrong process.
func TestMemoryNeedsTheBinary(t *testing.T) {
	ctx, env := embedded(t)
	_, err := Memory(ctx, env, CommandsConfig{Aggregates: 1})
	if err == nil || !strings.Contains(err.Error(), "strata binary") {
		t.Fatalf("err = %v, want one asking for the strata binary", err)
	}
}

func TestRSS(t *testing.T) {
	now, peak, err := rss(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if now <= 0 || peak < now {
		t.Fatalf("rss now %.1f MB, peak %.1f MB", now, peak)
	}
}
