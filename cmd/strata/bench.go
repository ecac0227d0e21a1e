package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/strata-es/strata/internal/bench"
	"github.com/strata-es/strata/internal/devbroker"
	"github.com/twmb/franz-go/pkg/kgo"
)

const allScenarios = "baseline,commands,http,projection,restore,load,memory"

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	brokers := fs.String("brokers", "", "Kafka brokers to measure against (default: an embedded broker in this process)")
	scenarios := fs.String("scenario", allScenarios, "comma-separated scenarios: "+allScenarios)
	baselineN := fs.Int("baseline-records", 500000, "baseline: records per baseline")
	aggregates := fs.Int("aggregates", 100000, "commands, http, projection, restore, memory: accounts")
	commands := fs.Int("commands", 200000, "commands, memory: deposits sent after opening the accounts")
	rate := fs.Int("rate", 10000, "commands: the fixed rate measured besides the maximum, commands/s")
	clients := fs.Int("clients", 64, "http: concurrent clients")
	httpRate := fs.Int("http-rate", 2000, "http: the fixed rate measured besides the maximum, commands/s")
	httpCommands := fs.Int("http-commands", 20000, "http: deposits at the maximum rate (the fixed rate sends five seconds' worth)")
	events := fs.Int("events", 1000000, "projection, restore: events in the history")
	snapshotEvery := fs.String("snapshot-every", "5,100", "restore: snapshot intervals to measure, comma-separated")
	loadEvents := fs.Int("load-events", 10000, "load: events of the loaded aggregate")
	partitions := fs.Int("partitions", 12, "partitions of the scenarios' topics")
	asJSON := fs.Bool("json", false, "print one JSON object per scenario instead of a table")
	logLevel := fs.String("log-level", "warn", "level of the logs of the nodes the scenarios start: debug, info, warn, error")
	profileDir := fs.String("profile-dir", "", "write a CPU profile of each scenario and an allocation profile after it (cumulative: diff with pprof -base) into this directory")
	if _, err := parse(fs, args, stderr, "[flags]"); err != nil {
		return flagExit(err)
	}
	switch {
	case *aggregates < 1 || *events < *aggregates:
		return usageError(fs, stderr, "--events (%d) must be at least --aggregates (%d), and both positive", *events, *aggregates)
	case *commands < 0 || *rate < 1 || *httpRate < 1 || *httpCommands < 1 || *baselineN < 1:
		return usageError(fs, stderr, "--commands, --rate, --http-rate, --http-commands and --baseline-records must be positive")
	case *clients < 1 || *clients > 4096:
		return usageError(fs, stderr, "--clients %d: want 1 to 4096", *clients)
	case *loadEvents < 2:
		return usageError(fs, stderr, "--load-events %d: want at least 2", *loadEvents)
	case *partitions < 1 || *partitions > 1000:
		return usageError(fs, stderr, "--partitions %d: want 1 to 1000", *partitions)
	}
	var everies []int
	for _, s := range splitList(*snapshotEvery) {
		var every int
		if _, err := fmt.Sscan(s, &every); err != nil || every < 1 {
			return usageError(fs, stderr, "--snapshot-every %q: want positive numbers", s)
		}
		everies = append(everies, every)
	}
	known := map[string]bool{}
	for _, s := range splitList(allScenarios) {
		known[s] = true
	}
	chosen := splitList(*scenarios)
	for _, sc := range chosen {
		if !known[sc] {
			return usageError(fs, stderr, "unknown scenario %q (known: %s)", sc, allScenarios)
		}
	}
	if *profileDir != "" {
		if err := os.MkdirAll(*profileDir, 0o755); err != nil {
			return usageError(fs, stderr, "--profile-dir: %v", err)
		}
	}

	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "strata bench: cannot find my own binary for the memory scenario: %v\n", err)
		return exitFailure
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageError(fs, stderr, "--log-level %q: want debug, info, warn or error", *logLevel)
	}
	env := bench.Env{Partitions: int32(*partitions), Progress: stderr, Exec: exe,
		// The nodes' warnings and errors (a transaction retried, a
		// rebalance) explain a figure.
		Log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))}
	if *brokers == "" {
		c, addr, err := devbroker.Start(devbroker.Options{})
		if err != nil {
			fmt.Fprintf(stderr, "strata bench: %v\n", err)
			return exitFailure
		}
		defer c.Close()
		env.Brokers = []string{addr}
		fmt.Fprintf(stderr, "strata bench: embedded broker at %s\n", addr)
	} else {
		env.Brokers = splitList(*brokers)
	}
	env.Opts = []kgo.Opt{kgo.SeedBrokers(env.Brokers...)}

	var results []bench.Result
	var bl bench.Baselines
	began := time.Now()
	for _, sc := range chosen {
		stop, err := profile(*profileDir, sc)
		if err != nil {
			fmt.Fprintf(stderr, "strata bench: --profile-dir: %v\n", err)
			return exitFailure
		}
		rs, err := runScenario(ctx, env, sc, scenarioFlags{
			baselineN: *baselineN, aggregates: *aggregates, commands: *commands, rate: *rate, clients: *clients,
			httpRate: *httpRate, httpCommands: *httpCommands, events: *events, everies: everies, loadEvents: *loadEvents,
		}, &bl, stderr)
		stop()
		if err != nil {
			fmt.Fprintf(stderr, "strata bench: %s: %v\n", sc, err)
			return exitFailure
		}
		results = append(results, rs...)
	}
	fmt.Fprintf(stderr, "strata bench: %d scenarios in %s\n", len(chosen), time.Since(began).Round(time.Second))
	if *profileDir != "" {
		fmt.Fprintf(stderr, "strata bench: profiles in %s (go tool pprof -top %s)\n", *profileDir, filepath.Join(*profileDir, "cpu-"+chosen[0]+".pprof"))
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, r := range results {
			_ = enc.Encode(r)
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tSECONDS\tTHROUGHPUT/s\tP50 ms\tP99 ms\tBASELINE/s\tRATIO\tDETAILS")
	for _, r := range results {
		var extra []string
		for k, v := range r.Extra {
			extra = append(extra, fmt.Sprintf("%s=%v", k, v))
		}
		sort.Strings(extra)
		baseline, ratio := "", ""
		if r.Ratio > 0 {
			baseline, ratio = fmt.Sprintf("%.0f", r.BaselinePerS), fmt.Sprintf("%.2f", r.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.0f\t%.2f\t%.2f\t%s\t%s\t%s\n", r.Name, r.Seconds, r.ThroughputPerS, r.P50ms, r.P99ms, baseline, ratio, strings.Join(extra, " "))
	}
	_ = tw.Flush()
	return exitOK
}

type scenarioFlags struct {
	baselineN, aggregates, commands, rate, clients, httpRate, httpCommands, events, loadEvents int
	everies                                                                                    []int
}

// runScenario runs one scenario; bl holds the baselines measured so far,
// which later scenarios are divided by.
func runScenario(ctx context.Context, env bench.Env, sc string, f scenarioFlags, bl *bench.Baselines, stderr io.Writer) ([]bench.Result, error) {
	ratio := func(r *bench.Result, base bench.Result) {
		if base.ThroughputPerS > 0 {
			r.BaselinePerS, r.Ratio = base.ThroughputPerS, r.ThroughputPerS/base.ThroughputPerS
		}
	}
	var out []bench.Result
	switch sc {
	case "baseline":
		fmt.Fprintf(stderr, "== baselines: %d records each\n", f.baselineN)
		b, err := bench.RunBaselines(ctx, env, f.baselineN)
		if err != nil {
			return nil, err
		}
		*bl = b
		out = append(out, b.Produce, b.Passthrough, b.IntoPebble)
	case "commands":
		for _, rate := range []int{0, f.rate} {
			n := f.commands
			if rate > 0 {
				n = min(n, 5*rate) // five seconds at the fixed rate
			}
			fmt.Fprintf(stderr, "== commands: %d accounts opened, then %d deposits, rate %d/s (0: max)\n", f.aggregates, n, rate)
			r, err := bench.Commands(ctx, env, bench.CommandsConfig{Aggregates: f.aggregates, Commands: n, Rate: rate})
			if err != nil {
				return nil, err
			}
			if rate == 0 {
				ratio(&r, bl.Passthrough)
			}
			out = append(out, r)
		}
	case "http":
		for _, rate := range []int{f.httpRate, 0} {
			n := f.httpCommands
			if rate > 0 {
				n = 5 * rate
			}
			aggs := min(f.aggregates, 10000)
			fmt.Fprintf(stderr, "== http: %d clients, %d deposits over %d accounts, rate %d/s (0: max)\n", f.clients, n, aggs, rate)
			r, err := bench.HTTP(ctx, env, bench.HTTPConfig{Aggregates: aggs, Commands: n, Clients: f.clients, Rate: rate})
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	case "projection":
		fmt.Fprintf(stderr, "== projection: catch-up over %d events of %d accounts\n", f.events, f.aggregates)
		r, err := bench.Projection(ctx, env, bench.ProjectionConfig{Aggregates: f.aggregates, Events: f.events})
		if err != nil {
			return nil, err
		}
		ratio(&r, bl.IntoPebble)
		out = append(out, r)
	case "restore":
		for _, every := range f.everies {
			fmt.Fprintf(stderr, "== restore: %d aggregates, %d events, snapshot every %d\n", f.aggregates, f.events, every)
			r, err := bench.Restore(ctx, env, bench.RestoreConfig{Aggregates: f.aggregates, Events: f.events, SnapshotEvery: every})
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	case "load":
		for _, every := range []int{100, -1} {
			fmt.Fprintf(stderr, "== load: one account of %d events, snapshot every %d (-1: none)\n", f.loadEvents, every)
			r, err := bench.Load(ctx, env, bench.LoadConfig{Events: f.loadEvents, SnapshotEvery: every, Loads: 200})
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	case "memory":
		fmt.Fprintf(stderr, "== memory: strata serve in its own process, idle, then %d accounts and %d deposits\n", f.aggregates, f.commands)
		r, err := bench.Memory(ctx, env, bench.CommandsConfig{Aggregates: f.aggregates, Commands: f.commands})
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// profile starts a CPU profile of scenario sc in dir and returns what
// stops it and writes the allocation profile beside it; nothing when dir
// is empty.
func profile(dir, sc string) (func(), error) {
	if dir == "" {
		return func() {}, nil
	}
	cpu, err := os.Create(filepath.Join(dir, "cpu-"+sc+".pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		cpu.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		cpu.Close()
		runtime.GC()
		if f, err := os.Create(filepath.Join(dir, "allocs-"+sc+".pprof")); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}, nil
}
