package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/devbroker"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// buildStrata builds the binary once per test run.
var buildStrata = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "strata-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "strata")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// proc is a `strata serve` process.
type proc struct {
	cmd  *exec.Cmd
	url  string
	done chan error
	log  string // its stderr
}

func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// startServeArgs starts `strata serve ARGS --log-level info` with env added to
// its environment, and waits until it serves; its stderr goes to a log
// file (proc.logTail). It is killed when the test ends.
func startServeArgs(t *testing.T, bin string, args, env []string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append(append([]string{"serve"}, args...), "--log-level", "info")...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.CreateTemp(t.TempDir(), "serve-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1), log: logf.Name()}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if i := strings.Index(sc.Text(), "HTTP API at "); i >= 0 {
				urls <- strings.TrimSuffix(strings.Fields(sc.Text()[i+len("HTTP API at "):])[0], ",")
			}
		}
		p.done <- cmd.Wait()
	}()
	select {
	case p.url = <-urls:
	case err := <-p.done:
		t.Fatalf("strata serve exited before serving: %v\n%s", err, p.logTail())
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("strata serve did not serve in 60s")
	}
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.done <- nil // later kills return at once
}

// exited waits for the process to die by itself (an injected crash).
func (p *proc) exited(d time.Duration) bool {
	select {
	case err := <-p.done:
		p.done <- err
		return true
	case <-time.After(d):
		return false
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestCrashAtTheDangerousPoints kills `strata serve` with SIGKILL at each
// dangerous point of the write path (the process kills itself there, via
// STRATA_CRASH_AT) and once more at a random moment, while clients keep
// sending deposits and retry with the same command ID. Afterwards every
// acknowledged command has its event exactly once, versions are gapless,
// and the restarted process serves the state a replay of the events topic
// gives.
//
// It runs twice: restarting on the same data directory, and restarting on
// an empty one with the same --instance-id, as a replacement of a dead
// process on a new disk does. The second has nothing local to rely on: the
// dead process's open transaction must be fenced by its successor's, its
// state restored from the snapshot and events topics, and the outcomes
// of the commands it answered learnt from the results topic, for a resend
// to get its first answer and not a second event.
func TestCrashAtTheDangerousPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and kills processes")
	}
	t.Run("on its data directory", func(t *testing.T) { crashAtTheDangerousPoints(t, false) })
	t.Run("on an empty data directory with its instance ID", func(t *testing.T) { crashAtTheDangerousPoints(t, true) })
}

func crashAtTheDangerousPoints(t *testing.T, wipe bool) {
	bin, err := buildStrata()
	if err != nil {
		t.Fatal(err)
	}
	brokers := os.Getenv("STRATA_TEST_BROKERS")
	if brokers == "" {
		c, addr, err := devbroker.Start(devbroker.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		brokers = addr
	}
	ns := fmt.Sprintf("crash%d", time.Now().UnixNano()%1e9)
	data := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	// serve starts the process, on an empty data directory with the same
	// instance ID each time when wipe is set.
	serve := func(env ...string) *proc {
		t.Helper()
		args := []string{"--brokers", brokers, "--namespace", ns, "--partitions", "4", "--data", data, "--http", addr}
		if wipe {
			if err := os.RemoveAll(data); err != nil {
				t.Fatal(err)
			}
			args = append(args, "--instance-id", "crash-1")
		}
		return startServeArgs(t, bin, args, env)
	}

	p := serve()
	const accounts = 8
	for a := range accounts {
		if code, _, errs := cli(t, "send", "account", fmt.Sprintf("acc-%d", a), "OpenAccount", `{"owner":"o","initial_balance":0}`, "--http", base); code != 0 {
			t.Fatalf("open: %s", errs)
		}
	}

	var ackMu sync.Mutex
	acked := map[string]int{} // command ID → amount
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for c := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 11))
			for i := 0; ctx.Err() == nil; i++ {
				id, amount := fmt.Sprintf("c%d-%d", c, i), 1+rng.IntN(50)
				body := fmt.Sprintf(`{"type":"Deposit","data":{"amount":%d},"command_id":%q}`, amount, id)
				account := fmt.Sprintf("acc-%d", rng.IntN(accounts))
				for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(30 * time.Millisecond) {
					resp, err := http.Post(base+"/v1/commands/account/"+account, "application/json", strings.NewReader(body))
					if err != nil {
						continue
					}
					resp.Body.Close()
					if resp.StatusCode == 200 {
						ackMu.Lock()
						acked[id] = amount
						ackMu.Unlock()
						break
					}
				}
			}
		}()
	}
	t0 := time.Now()
	for _, point := range []string{"before-flush", "before-commit", "after-commit", "random"} {
		p.kill()
		if point == "random" {
			p = serve()
			time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond)
			p.kill()
		} else {
			p = serve("STRATA_CRASH_AT=" + point + ":5")
			if !p.exited(30 * time.Second) {
				ackMu.Lock()
				n := len(acked)
				ackMu.Unlock()
				t.Fatalf("the process did not crash at %s (%d commands acknowledged so far); its log:\n%s", point, n, p.logTail())
			}
		}
		p = serve()
		time.Sleep(300 * time.Millisecond)
		t.Logf("%s: crashed and restarted (%s)", point, time.Since(t0).Round(time.Millisecond))
	}
	// Let the load run on the last process until enough commands went
	// through (a slow cluster acknowledges few during the crashes).
	// On a 3-node Kafka this used to take 25-140s: a transaction's first
	// produce, refused with CONCURRENT_TRANSACTIONS while the previous
	// markers were written, was retried only after franz-go's 5s
	// MetadataMinAge (see the processor's client options).
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ackMu.Lock()
		n := len(acked)
		ackMu.Unlock()
		if n >= 50 {
			break
		}
	}
	stop()
	wg.Wait()
	t.Logf("load stopped (%s)", time.Since(t0).Round(time.Millisecond))
	if testing.Verbose() {
		t.Logf("the last process's log:\n%s", p.logTail())
	}
	if len(acked) < 50 {
		t.Fatalf("only %d commands acknowledged in 90s: the load did not run; the last process's log:\n%s", len(acked), p.logTail())
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ConsumeTopics(kafka.Names{Namespace: ns}.Events("account")),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]int{}
	versions := map[string]int{}
	balance := map[string]int{}
	for idle := 0; idle < 3; {
		pctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if fs.NumRecords() == 0 {
			idle++
			continue
		}
		fs.EachRecord(func(r *kgo.Record) {
			id := string(r.Key)
			hdr := map[string]string{}
			for _, h := range r.Headers {
				hdr[h.Key] = string(h.Value)
			}
			v, _ := strconv.Atoi(hdr["strata-aggregate-version"])
			if v != versions[id]+1 {
				t.Errorf("%s: version %d follows %d", id, v, versions[id])
			}
			versions[id] = v
			if hdr["strata-event-type"] == "MoneyDeposited" {
				seen[hdr["strata-command-id"]]++
				// Amounts come from the events themselves: a deposit
				// the client never heard of still counts.
			}
		})
	}
	for id := range acked {
		if seen[id] != 1 {
			t.Errorf("acknowledged command %s has %d events, want exactly 1", id, seen[id])
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("command %s has %d events", id, n)
		}
	}
	// The restarted process serves the replayed state: version equal to
	// the number of events, balance equal to the sum of the deposits on
	// the topic (decoded by the server's own history).
	for a := range accounts {
		id := fmt.Sprintf("acc-%d", a)
		var agg struct {
			Version int
			State   struct{ Balance int }
		}
		var hist struct {
			Events []struct {
				Type string
				Data struct{ Amount int }
			}
		}
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			getJSON(t, base+"/v1/aggregates/account/"+id, &agg)
			if agg.Version == versions[id] {
				break
			}
		}
		getJSON(t, base+"/v1/aggregates/account/"+id+"/events", &hist)
		for _, e := range hist.Events {
			balance[id] += e.Data.Amount
		}
		if agg.Version != versions[id] || len(hist.Events) != versions[id] || agg.State.Balance != balance[id] {
			t.Errorf("%s served as version %d balance %d; the events topic has %d events, history %d, summing to %d",
				id, agg.Version, agg.State.Balance, versions[id], len(hist.Events), balance[id])
		}
		// The view, kept by a projection killed mid-stream with the
		// process, equals the same recomputation: no event skipped or
		// applied twice.
		var row struct{ Balance, Version int }
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			getJSON(t, base+"/v1/views/accounts/"+id, &row)
			if row.Version == versions[id] {
				break
			}
		}
		if row.Version != versions[id] || row.Balance != balance[id] {
			t.Errorf("view accounts/%s = version %d balance %d; the events give version %d balance %d", id, row.Version, row.Balance, versions[id], balance[id])
		}
	}
	t.Logf("%d commands acknowledged across 4 crashes; %d deposits on the topic", len(acked), len(seen))
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(v)
}
