package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/bench"
)

// TestBenchCLI runs `strata bench --json` small, with the memory scenario
// (a `strata serve` child process) and the baselines it is divided by:
// one JSON object per result, with figures that could only come from a
// run.
func TestBenchCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a strata serve process")
	}
	bin, err := buildStrata()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "bench", "--json", "--scenario", "baseline,commands,projection,memory",
		"--partitions", "3", "--baseline-records", "2000", "--aggregates", "100", "--events", "1000", "--commands", "500", "--rate", "1000")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("strata bench: %v\n%s", err, stderr.String())
	}
	byName := map[string]bench.Result{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var r bench.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("not a JSON object per line: %q: %v", sc.Text(), err)
		}
		byName[r.Name] = r
	}
	if len(byName) != 7 {
		t.Fatalf("%d results, want 3 baselines, 2 commands, projection, memory:\n%s", len(byName), stdout.String())
	}
	pass, pebble := byName["baseline: kgo exactly-once passthrough"], byName["baseline: kgo consume into Pebble"]
	max, proj, mem := byName["commands (max rate)"], byName["projection catch-up (accounts view)"], byName["memory (strata serve, own process)"]
	if pass.ThroughputPerS <= 0 || max.BaselinePerS != pass.ThroughputPerS || max.Ratio <= 0 {
		t.Errorf("commands not divided by the passthrough: %+v / %+v", max, pass)
	}
	if pebble.ThroughputPerS <= 0 || proj.BaselinePerS != pebble.ThroughputPerS || proj.Ratio <= 0 {
		t.Errorf("projection not divided by the Pebble baseline: %+v / %+v", proj, pebble)
	}
	idle, _ := mem.Extra["idle_rss_mb"].(float64)
	peak, _ := mem.Extra["peak_rss_mb"].(float64)
	if idle < 5 || peak < idle || mem.Extra["commands"] != float64(600) {
		t.Errorf("memory: %+v", mem)
	}
	if !strings.Contains(stderr.String(), "== memory") {
		t.Errorf("no progress on stderr:\n%s", stderr.String())
	}
}

// TestBenchFlags: impossible flag values name the flag.
func TestBenchFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "nope"}, `unknown scenario "nope"`},
		{[]string{"--clients", "0"}, "--clients 0"},
		{[]string{"--snapshot-every", "x"}, `--snapshot-every "x"`},
		{[]string{"--events", "5", "--aggregates", "10"}, "--events (5)"},
		{[]string{"--load-events", "1"}, "--load-events 1"},
	} {
		var stdout, stderr bytes.Buffer
		if code := runBench(context.Background(), tc.args, &stdout, &stderr); code == exitOK || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("bench %v: exit %d, stderr %q; want an error containing %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
