package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/node"
)

// LoadConfig sizes the load scenario.
type LoadConfig struct {
	Events int // of the one aggregate
	// SnapshotEvery of the node; negative writes no snapshots.
	SnapshotEvery int
	Loads         int // timed loads
}

// Load gives one account a history of Events events through the commands
// topic, then times loading it at its last version over the HTTP API
// (GET ?version=N): the newest snapshot at or before N plus the events
// after it, or, without snapshots, a replay of the whole history. The
// current state, which the processor keeps materialized, is timed too
// (current_p50_ms): that is what a command's validation loads.
func Load(ctx context.Context, env Env, lc LoadConfig) (Result, error) {
	ns := namespace()
	res := Result{Name: fmt.Sprintf("load %d-event aggregate (snapshot every %d)", lc.Events, lc.SnapshotEvery)}
	if lc.SnapshotEvery < 0 {
		res.Name = fmt.Sprintf("load %d-event aggregate (no snapshots)", lc.Events)
	}
	n, done, err := env.accountNode(ctx, ns, node.Config{SnapshotEvery: lc.SnapshotEvery})
	if err != nil {
		return res, err
	}
	defer done()
	env.progress("load: writing %d events of one account", lc.Events)
	if _, err := drive(ctx, env, kafka.Names{Namespace: ns}, CommandsConfig{Aggregates: 1, Commands: lc.Events - 1}); err != nil {
		return res, err
	}
	client := &http.Client{Timeout: time.Minute}
	defer client.CloseIdleConnections()
	timeGets := func(url string) ([]float64, error) {
		lat := make([]float64, 0, lc.Loads)
		for i := 0; i < lc.Loads+lc.Loads/10; i++ { // a tenth to warm up
			t := time.Now()
			resp, err := client.Get(url)
			if err != nil {
				return nil, err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
			}
			if i >= lc.Loads/10 {
				lat = append(lat, float64(time.Since(t))/1e6)
			}
		}
		slices.Sort(lat)
		return lat, nil
	}
	url := n.url + "/v1/aggregates/account/acc-0"
	// The results are in; the node's store applies the last of them
	// right after.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp, err := client.Get(url + "?version=" + strconv.Itoa(lc.Events))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("acc-0 has not reached version %d 10 s after its last result", lc.Events)
		}
	}
	start := time.Now()
	lat, err := timeGets(url + "?version=" + strconv.Itoa(lc.Events))
	if err != nil {
		return res, err
	}
	took := time.Since(start)
	cur, err := timeGets(url)
	if err != nil {
		return res, err
	}
	res.Seconds = took.Seconds()
	res.ThroughputPerS = float64(len(lat)) / took.Seconds()
	res.P50ms, res.P99ms = pct(lat, 0.5), pct(lat, 0.99)
	res.Extra = map[string]any{"events": lc.Events, "loads": lc.Loads, "current_p50_ms": round2(pct(cur, 0.5)), "current_p99_ms": round2(pct(cur, 0.99))}
	return res, nil
}
