package soak

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestSoakShort runs a ten-second soak without chaos: the broker and two
// instances as processes, both kinds of clients, every check. It proves
// the harness end to end (and, under -race, its own concurrency); the
// chaos runs in `make soak`.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds strata and runs processes")
	}
	bin := filepath.Join(t.TempDir(), "strata")
	build := exec.Command("go", "build", "-o", bin, "github.com/strata-es/strata/cmd/strata")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sum, err := Run(ctx, Config{Exec: bin, Duration: 10 * time.Second, Clients: 4, Chaos: "none", Dir: t.TempDir(), Progress: &progress})
	var out bytes.Buffer
	if sum != nil {
		sum.Print(&out)
	}
	if err != nil || !sum.Passed() {
		t.Fatalf("soak: %v\n%s\n%s", err, progress.String(), out.String())
	}
	if sum.Acked < 100 || sum.SentHTTP == 0 || sum.SentKafka == 0 || sum.Events != int(sum.Acked) {
		t.Fatalf("the workload did not run as it should:\n%s", out.String())
	}
	if _, err := os.Stat(sum.Config.Dir); err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
}
