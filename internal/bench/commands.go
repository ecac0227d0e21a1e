package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/node"
	"github.com/twmb/franz-go/pkg/kgo"
)

// CommandsConfig sizes the commands scenario.
type CommandsConfig struct {
	Aggregates int // accounts, opened first
	Commands   int // deposits after the openings
	// Rate is commands per second; 0 sends as fast as the node takes them.
	Rate int
}

// Commands produces account commands to the commands topic, as any Kafka
// client would, and measures how fast a node processes them exactly once,
// and the latency from produce to the result being consumed.
func Commands(ctx context.Context, env Env, cc CommandsConfig) (Result, error) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	name := "commands (max rate)"
	if cc.Rate > 0 {
		name = fmt.Sprintf("commands (%d/s)", cc.Rate)
	}
	res := Result{Name: name}
	dropTopics, err := env.accountTopics(ctx, ns)
	if err != nil {
		return res, err
	}
	defer dropTopics()
	n, err := env.startNode(ctx, ns, node.Config{})
	if err != nil {
		return res, err
	}
	defer func() { _ = n.stop() }()

	total := cc.Aggregates + cc.Commands
	sent := make([]int64, total) // unix nanos at produce, by command number
	lat := make([]float64, 0, total)
	var latMu sync.Mutex
	results, err := kgo.NewClient(append(append([]kgo.Opt(nil), env.Opts...),
		kgo.ConsumeTopics(names.Results(account.Name)), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))...)
	if err != nil {
		return res, err
	}
	defer results.Close()
	var got atomic.Int64
	allIn := make(chan struct{})
	go func() {
		seen := make([]bool, total)
		for got.Load() < int64(total) {
			fs := results.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			now := time.Now().UnixNano()
			fs.EachRecord(func(r *kgo.Record) {
				i, err := strconv.Atoi(string(r.Key[1:]))
				if err != nil || i < 0 || i >= total || seen[i] {
					return
				}
				seen[i] = true
				latMu.Lock()
				lat = append(lat, float64(now-atomic.LoadInt64(&sent[i]))/1e6)
				latMu.Unlock()
				got.Add(1)
			})
		}
		close(allIn)
	}()

	prod, err := kgo.NewClient(append(append([]kgo.Opt(nil), env.Opts...), kgo.DefaultProduceTopic(names.Commands(account.Name)),
		kgo.MaxBufferedRecords(100000), kgo.ProducerLinger(time.Millisecond))...)
	if err != nil {
		return res, err
	}
	defer prod.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now()
	var perr atomic.Value
	for i := 0; i < total; i++ {
		if cc.Rate > 0 {
			if wait := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(cc.Rate))); wait > 0 {
				time.Sleep(wait)
			}
		}
		var id, typ, body string
		if i < cc.Aggregates {
			id, typ, body = "acc-"+strconv.Itoa(i), "OpenAccount", `{"owner":"bench","initial_balance":0}`
		} else {
			id, typ, body = "acc-"+strconv.Itoa(rng.IntN(cc.Aggregates)), "Deposit", `{"amount":1}`
		}
		atomic.StoreInt64(&sent[i], time.Now().UnixNano())
		prod.Produce(ctx, &kgo.Record{Key: []byte(id), Value: []byte(body), Headers: []kgo.RecordHeader{
			{Key: kafka.HeaderCommandType, Value: []byte(typ)},
			{Key: kafka.HeaderCommandID, Value: []byte("c" + strconv.Itoa(i))},
			{Key: kafka.HeaderContentType, Value: []byte(kafka.ContentTypeJSON)},
		}}, func(_ *kgo.Record, err error) {
			if err != nil {
				perr.Store(err)
			}
		})
		if i%50000 == 49999 {
			env.progress("commands: %d of %d sent, %d results", i+1, total, got.Load())
		}
	}
	if err := prod.Flush(ctx); err != nil {
		return res, err
	}
	if e, ok := perr.Load().(error); ok {
		return res, e
	}
	last := time.Now()
	for {
		select {
		case <-allIn:
		case <-time.After(2 * time.Second):
			if time.Since(last) > 2*time.Second {
				env.progress("commands: %d of %d results", got.Load(), total)
				last = time.Now()
			}
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			continue
		}
		break
	}
	took := time.Since(start)
	latMu.Lock()
	slices.Sort(lat)
	latMu.Unlock()
	res.Seconds = took.Seconds()
	res.ThroughputPerS = float64(total) / took.Seconds()
	res.P50ms, res.P99ms = pct(lat, 0.50), pct(lat, 0.99)
	res.Extra = map[string]any{"commands": total, "aggregates": cc.Aggregates}
	return res, nil
}

func pct(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(float64(len(sorted))*p), len(sorted)-1)]
}
