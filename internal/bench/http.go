package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/node"
)

// HTTPConfig sizes the http scenario.
type HTTPConfig struct {
	Aggregates int // accounts, opened over Kafka before the clock starts
	Commands   int // deposits over HTTP
	Clients    int // concurrent HTTP clients
	// Rate is commands per second across the clients; 0 is as fast as
	// they go, each sending its next command when the last is answered.
	Rate int
}

// HTTP posts deposits to a node's HTTP API from concurrent clients, each
// waiting for its command's outcome, and measures the latency a client
// sees. At a fixed rate, latency counts from when a command was due, so a
// stall delays the commands behind it in the figures too (no coordinated
// omission).
func HTTP(ctx context.Context, env Env, hc HTTPConfig) (Result, error) {
	ns := namespace()
	name := fmt.Sprintf("http, %d clients (max rate)", hc.Clients)
	if hc.Rate > 0 {
		name = fmt.Sprintf("http, %d clients (%d/s)", hc.Clients, hc.Rate)
	}
	res := Result{Name: name}
	n, stop, err := env.accountNode(ctx, ns, node.Config{})
	if err != nil {
		return res, err
	}
	defer stop()
	env.progress("http: opening %d accounts over Kafka", hc.Aggregates)
	if _, err := drive(ctx, env, kafka.Names{Namespace: ns}, CommandsConfig{Aggregates: hc.Aggregates}); err != nil {
		return res, err
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: hc.Clients, MaxConnsPerHost: hc.Clients}, Timeout: time.Minute}
	defer client.CloseIdleConnections()
	due := make(chan time.Time, hc.Commands)
	start := time.Now()
	go func() {
		defer close(due)
		for i := 0; i < hc.Commands; i++ {
			at := time.Now()
			if hc.Rate > 0 {
				at = start.Add(time.Duration(i) * time.Second / time.Duration(hc.Rate))
				if wait := time.Until(at); wait > 0 {
					select {
					case <-time.After(wait):
					case <-ctx.Done():
						return
					}
				}
			}
			due <- at
		}
	}()
	var (
		mu      sync.Mutex
		lat     = make([]float64, 0, hc.Commands)
		done    atomic.Int64
		failed  atomic.Int64
		firstMu sync.Mutex
		first   error
	)
	var wg sync.WaitGroup
	for c := 0; c < hc.Clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			mine := make([]float64, 0, hc.Commands/hc.Clients+1)
			body := []byte(`{"type":"Deposit","data":{"amount":1}}`)
			for at := range due {
				if hc.Rate == 0 {
					at = time.Now()
				}
				url := n.url + "/v1/commands/account/acc-" + strconv.Itoa(rng.IntN(hc.Aggregates))
				err := post(ctx, client, url, body)
				if err != nil {
					failed.Add(1)
					firstMu.Lock()
					if first == nil {
						first = err
					}
					firstMu.Unlock()
					continue
				}
				mine = append(mine, float64(time.Since(at))/1e6)
				if d := done.Add(1); d%10000 == 0 {
					env.progress("http: %d of %d commands answered", d, hc.Commands)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	slices.Sort(lat)
	ok := hc.Commands - int(failed.Load())
	driven{total: ok, took: took, lat: lat}.fill(&res)
	res.Extra = map[string]any{"commands": hc.Commands, "clients": hc.Clients, "aggregates": hc.Aggregates, "p999_ms": round2(pct(lat, 0.999))}
	if f := failed.Load(); f > 0 {
		// A figure with failures in it is still a figure: report them
		// with it rather than lose the run; a command that failed counts
		// in neither the throughput nor the latencies.
		res.Extra["failed"] = f
		res.Extra["first_failure"] = first.Error()
		env.progress("http: %d of %d commands failed; the first: %v", f, hc.Commands, first)
	}
	return res, nil
}

// post sends one command and reads its outcome; anything but 200 is an
// error.
func post(ctx context.Context, client *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
