package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
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
	name := "commands (max rate)"
	if cc.Rate > 0 {
		name = fmt.Sprintf("commands (%d/s)", cc.Rate)
	}
	res := Result{Name: name}
	_, done, err := env.accountNode(ctx, ns, node.Config{})
	if err != nil {
		return res, err
	}
	defer done()
	d, err := drive(ctx, env, kafka.Names{Namespace: ns}, cc)
	if err != nil {
		return res, err
	}
	d.fill(&res)
	res.Extra = map[string]any{"commands": d.total, "aggregates": cc.Aggregates}
	return res, nil
}

// driven is what drive measured.
type driven struct {
	total int
	took  time.Duration
	lat   []float64 // milliseconds from produce to result, sorted
}

func (d driven) fill(r *Result) {
	r.Seconds = d.took.Seconds()
	r.ThroughputPerS = float64(d.total) / d.took.Seconds()
	r.P50ms, r.P99ms = pct(d.lat, 0.50), pct(d.lat, 0.99)
}

// drive produces cc's commands (openings, then deposits to random
// accounts) to the account commands topic of names and waits for every
// result, as a Kafka client of Strata would.
func drive(ctx context.Context, env Env, names kafka.Names, cc CommandsConfig) (driven, error) {
	total := cc.Aggregates + cc.Commands
	d := driven{total: total}
	sent := make([]int64, total) // unix nanos at produce, by command number
	lat := make([]float64, 0, total)
	results, err := kgo.NewClient(append(append([]kgo.Opt(nil), env.Opts...),
		kgo.ConsumeTopics(names.Results(account.Name)), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))...)
	if err != nil {
		return d, err
	}
	defer results.Close()
	var got atomic.Int64
	allIn := make(chan struct{})
	go func() {
		defer close(allIn)
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
				lat = append(lat, float64(now-atomic.LoadInt64(&sent[i]))/1e6)
				got.Add(1)
			})
		}
	}()

	prod, err := kgo.NewClient(append(append([]kgo.Opt(nil), env.Opts...), kgo.DefaultProduceTopic(names.Commands(account.Name)),
		kgo.MaxBufferedRecords(100000), kgo.ProducerLinger(time.Millisecond))...)
	if err != nil {
		return d, err
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
		return d, err
	}
	if e, ok := perr.Load().(error); ok {
		return d, e
	}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case <-allIn:
			waiting = false
		case <-tick.C:
			env.progress("commands: %d of %d results", got.Load(), total)
		}
	}
	if ctx.Err() != nil {
		return d, ctx.Err()
	}
	d.took = time.Since(start)
	// allIn is closed: the consumer goroutine is done with lat.
	slices.Sort(lat)
	d.lat = lat
	return d, nil
}

func pct(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(float64(len(sorted))*p), len(sorted)-1)]
}
