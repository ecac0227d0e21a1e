package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Memory runs `strata serve` (every built-in aggregate and projection) in
// its own process, so that its resident set is its own and not the
// broker's or the load client's, and reads it idle and then at its peak
// under the commands scenario's load.
func Memory(ctx context.Context, env Env, cc CommandsConfig) (Result, error) {
	res := Result{Name: "memory (strata serve, own process)"}
	if env.Exec == "" || len(env.Brokers) == 0 {
		return res, errors.New("memory: needs the strata binary and the broker addresses (run it from strata bench)")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		return res, errors.New("memory: reads /proc/PID/status, which this system lacks (Linux only)")
	}
	ns := namespace()
	defer env.dropNamespace(ns)
	dir, err := os.MkdirTemp("", "strata-bench-serve")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	addr, err := freeAddr()
	if err != nil {
		return res, err
	}
	logs, err := os.CreateTemp("", "strata-bench-serve-*.log")
	if err != nil {
		return res, err
	}
	defer os.Remove(logs.Name())
	defer logs.Close()
	cmd := exec.Command(env.Exec, "serve", "--brokers", strings.Join(env.Brokers, ","), "--namespace", ns,
		"--partitions", strconv.Itoa(int(env.Partitions)), "--data", dir, "--http", addr, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logs, logs
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("memory: start %s serve: %w", env.Exec, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	fail := func(err error) (Result, error) {
		said, _ := os.ReadFile(logs.Name())
		return res, fmt.Errorf("memory: %w; strata serve said:\n%s", err, tail(string(said), 20))
	}
	env.progress("memory: waiting for strata serve (pid %d) to be ready", cmd.Process.Pid)
	if err := waitReady(ctx, "http://"+addr+"/readyz", exited); err != nil {
		return fail(err)
	}
	const settle = 5 * time.Second
	time.Sleep(settle)
	idle, _, err := rss(cmd.Process.Pid)
	if err != nil {
		return fail(err)
	}
	env.progress("memory: idle RSS %.0f MB; now the commands load", idle)
	d, err := drive(ctx, env, kafka.Names{Namespace: ns}, cc)
	if err != nil {
		return fail(err)
	}
	after, peak, err := rss(cmd.Process.Pid)
	if err != nil {
		return fail(err)
	}
	d.fill(&res)
	res.Extra = map[string]any{"idle_rss_mb": round2(idle), "peak_rss_mb": round2(peak), "after_rss_mb": round2(after),
		"commands": d.total, "aggregates": cc.Aggregates}
	return res, nil
}

// rss reads a process's resident set size now and at its peak, in MB.
func rss(pid int) (now, peak float64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status %s: %q", pid, k, v)
		}
		if k == "VmRSS" {
			now = kb / 1024
		} else {
			peak = kb / 1024
		}
	}
	if now == 0 || peak == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status: no VmRSS/VmHWM", pid)
	}
	return now, peak, sc.Err()
}

// waitReady polls url until it answers 200, the process exits or a minute
// passes.
func waitReady(ctx context.Context, url string, exited <-chan error) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("strata serve exited before it was ready: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("%s not ready after a minute", url)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// dropNamespace deletes every topic of namespace ns.
func (e *Env) dropNamespace(ns string) {
	cl, err := kgo.NewClient(e.Opts...)
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return
	}
	var mine []string
	for _, t := range topics.Names() {
		if strings.HasPrefix(t, ns+".") {
			mine = append(mine, t)
		}
	}
	_, _ = adm.DeleteTopics(ctx, mine...)
}
