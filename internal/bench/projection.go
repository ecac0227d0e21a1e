package bench

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/internal/codec"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/internal/store"
	"github.com/strata-es/strata/projections"
	"github.com/strata-es/strata/projections/accounts"
	"github.com/strata-es/strata/schemas"
)

// ProjectionConfig sizes the projection scenario.
type ProjectionConfig struct {
	Aggregates, Events int
}

// Projection writes a history of accounts to fresh topics, then measures
// how fast the accounts view catches up with it from nothing: decoding
// every event, folding it into its row and committing rows and offsets to
// Pebble, as a projection of a node does (its publishing to the view topic
// aside).
func Projection(ctx context.Context, env Env, pc ProjectionConfig) (Result, error) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	res := Result{Name: "projection catch-up (accounts view)"}
	dropTopics, err := env.accountTopics(ctx, ns)
	if err != nil {
		return res, err
	}
	defer dropTopics()
	t0 := time.Now()
	end, err := writeHistory(ctx, env, names, RestoreConfig{Aggregates: pc.Aggregates, Events: pc.Events})
	if err != nil {
		return res, err
	}
	env.progress("projection: wrote %d events for %d aggregates in %s", pc.Events, pc.Aggregates, time.Since(t0).Round(time.Millisecond))

	dir, err := os.MkdirTemp("", "strata-bench-projection")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		return res, err
	}
	defer db.Close()
	cat := schemas.Default()
	applied := position.NewTracker()
	r := projections.NewRunner(projections.RunnerConfig{
		Projection: accounts.Projection,
		Codecs:     map[string]codec.Codec{account.Name: {Type: account.Type, Catalog: cat}},
		DB:         db, Names: names, Partitions: env.Partitions, Opts: env.Opts, Applied: applied, Catalog: cat,
		NoPublish: true,
	})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- r.Run(rctx) }()
	defer func() { cancel(); <-done }()
	caught := make(chan struct{})
	go func() { applied.Wait(rctx, end); close(caught) }()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case <-caught:
			waiting = false
		case err := <-done:
			return res, fmt.Errorf("projection stopped: %w", err)
		case <-tick.C:
			st := r.Status()
			env.progress("projection: %d events applied, lag %d", st.Applied, st.Lag)
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	took := time.Since(start)
	if st := r.Status(); st.State != "running" || len(st.Failed) > 0 {
		return res, fmt.Errorf("projection %s: %s %v", st.State, st.Error, st.Failed)
	}
	res.Seconds = took.Seconds()
	res.ThroughputPerS = float64(pc.Events) / took.Seconds()
	res.Extra = map[string]any{"events": pc.Events, "aggregates": pc.Aggregates}
	return res, nil
}
