package bench

import (
	"context"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/devbroker"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRestoreScenario runs the restore scenario small: it must write the
// history, restore it into a cold node and report figures.
func TestRestoreScenario(t *testing.T) {
	c, addr, err := devbroker.Start(devbroker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := Env{Opts: []kgo.Opt{kgo.SeedBrokers(addr)}, Partitions: 4}
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
