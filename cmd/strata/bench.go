package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/strata-es/strata/internal/bench"
	"github.com/strata-es/strata/internal/devbroker"
	"github.com/twmb/franz-go/pkg/kgo"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	brokers := fs.String("brokers", "", "Kafka brokers to measure against (default: an embedded broker in this process)")
	scenarios := fs.String("scenario", "baseline,commands,restore", "comma-separated scenarios: baseline, commands, restore")
	commands := fs.Int("commands", 200000, "commands: deposits sent after opening --aggregates accounts")
	baselineN := fs.Int("baseline-records", 500000, "baseline: records per baseline")
	asJSON := fs.Bool("json", false, "print one JSON object per scenario instead of a table")
	aggregates := fs.Int("aggregates", 100000, "restore: aggregates in the history")
	events := fs.Int("events", 1000000, "restore: events in the history")
	snapshotEvery := fs.String("snapshot-every", "5,100", "restore: snapshot intervals to measure, comma-separated")
	partitions := fs.Int("partitions", 12, "partitions of the scenarios' topics")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if _, err := parse(fs, args, stderr, "[flags]"); err != nil {
		return flagExit(err)
	}
	if *aggregates < 1 || *events < *aggregates {
		return usageError(fs, stderr, "--events (%d) must be at least --aggregates (%d), and both positive", *events, *aggregates)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return usageError(fs, stderr, "--cpuprofile: %v", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return usageError(fs, stderr, "--cpuprofile: %v", err)
		}
		defer pprof.StopCPUProfile()
	}
	env := bench.Env{Partitions: int32(*partitions), Progress: stderr}
	if *brokers == "" {
		c, addr, err := devbroker.Start(devbroker.Options{})
		if err != nil {
			fmt.Fprintf(stderr, "strata bench: %v\n", err)
			return exitFailure
		}
		defer c.Close()
		env.Opts = []kgo.Opt{kgo.SeedBrokers(addr)}
		fmt.Fprintf(stderr, "strata bench: embedded broker at %s\n", addr)
	} else {
		env.Opts = []kgo.Opt{kgo.SeedBrokers(splitList(*brokers)...)}
	}
	var results []bench.Result
	var passthrough float64
	for _, sc := range splitList(*scenarios) {
		switch sc {
		case "baseline":
			fmt.Fprintf(stderr, "== baselines: %d records each\n", *baselineN)
			bl, err := bench.RunBaselines(ctx, env, *baselineN)
			if err != nil {
				fmt.Fprintf(stderr, "strata bench: baseline: %v\n", err)
				return exitFailure
			}
			passthrough = bl.Passthrough.ThroughputPerS
			results = append(results, bl.Produce, bl.Passthrough, bl.IntoPebble)
		case "commands":
			for _, rate := range []int{0, 10000} {
				n := *commands
				if rate > 0 {
					n = min(n, 5*rate) // five seconds at the fixed rate
				}
				fmt.Fprintf(stderr, "== commands: %d accounts opened, then %d deposits, rate %d/s (0: max)\n", *aggregates, n, rate)
				r, err := bench.Commands(ctx, env, bench.CommandsConfig{Aggregates: *aggregates, Commands: n, Rate: rate})
				if err != nil {
					fmt.Fprintf(stderr, "strata bench: commands: %v\n", err)
					return exitFailure
				}
				if passthrough > 0 && rate == 0 {
					r.BaselinePerS, r.Ratio = passthrough, r.ThroughputPerS/passthrough
				}
				results = append(results, r)
			}
		case "restore":
			for _, s := range splitList(*snapshotEvery) {
				var every int
				if _, err := fmt.Sscan(s, &every); err != nil || every < 1 {
					return usageError(fs, stderr, "--snapshot-every %q: want positive numbers", s)
				}
				fmt.Fprintf(stderr, "== restore: %d aggregates, %d events, snapshot every %d\n", *aggregates, *events, every)
				r, err := bench.Restore(ctx, env, bench.RestoreConfig{Aggregates: *aggregates, Events: *events, SnapshotEvery: every})
				if err != nil {
					fmt.Fprintf(stderr, "strata bench: restore: %v\n", err)
					return exitFailure
				}
				results = append(results, r)
			}
		default:
			return usageError(fs, stderr, "unknown scenario %q (known: baseline, commands, restore)", sc)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, r := range results {
			_ = enc.Encode(r)
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tSECONDS\tTHROUGHPUT/s\tP50 ms\tP99 ms\tRATIO\tDETAILS")
	for _, r := range results {
		var extra []string
		for k, v := range r.Extra {
			extra = append(extra, fmt.Sprintf("%s=%v", k, v))
		}
		sort.Strings(extra)
		ratio := ""
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.0f\t%.1f\t%.1f\t%s\t%s\n", r.Name, r.Seconds, r.ThroughputPerS, r.P50ms, r.P99ms, ratio, strings.Join(extra, " "))
	}
	_ = tw.Flush()
	return exitOK
}
