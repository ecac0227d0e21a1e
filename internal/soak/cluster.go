package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cluster is the processes under test: the broker (a child process
// running `strata broker`, unless the soak runs against given brokers)
// and the `strata serve` instances.
type cluster struct {
	cfg     *Config
	dir     string
	brokers []string
	broker  *proc // nil with external brokers
	inst    []*instance
	stats   *stats
	logf    func(format string, args ...any)

	// mu guards unexpected, the exits the soak did not cause.
	mu         sync.Mutex
	unexpected []string
}

// instance is one `strata serve` process with its data directory and
// HTTP address, both kept across restarts.
type instance struct {
	*proc
	n    int
	url  string
	data string
	// id is the --instance-id it runs with, "" for the ID kept in its
	// data directory. Even-numbered instances take one: when they are
	// restarted on an empty data directory they come back as the same
	// group member and transactional ID, and fence their dead self's
	// open transaction; the others come back as a new identity, whose
	// predecessor's transaction and group membership time out.
	id string
}

func newCluster(cfg *Config, dir string, st *stats, logf func(string, ...any)) (*cluster, error) {
	c := &cluster{cfg: cfg, dir: dir, stats: st, logf: logf}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	if len(cfg.Brokers) > 0 {
		c.brokers = cfg.Brokers
	} else {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		_, port, _ := strings.Cut(addr, ":")
		c.brokers = []string{addr}
		data := filepath.Join(dir, "broker")
		c.broker = &proc{
			name: "broker", exe: cfg.Exec, logPath: filepath.Join(dir, "logs", "broker.log"),
			args:   func() []string { return []string{"broker", "--port", port, "--data", data} },
			onExit: c.exitedByItself,
		}
	}
	for i := 1; i <= cfg.Instances; i++ {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		in := &instance{n: i, url: "http://" + addr, data: filepath.Join(dir, fmt.Sprintf("instance-%d", i))}
		if i%2 == 0 {
			in.id = fmt.Sprintf("soak-%d", i)
		}
		in.proc = &proc{
			name: fmt.Sprintf("instance %d", i), exe: cfg.Exec,
			logPath: filepath.Join(dir, "logs", fmt.Sprintf("instance-%d.log", i)),
			args: func() []string {
				args := []string{"serve", "--brokers", strings.Join(c.brokers, ","), "--namespace", cfg.Namespace,
					"--partitions", strconv.Itoa(cfg.Partitions), "--replication-factor", strconv.Itoa(cfg.ReplicationFactor),
					"--snapshot-every", strconv.Itoa(cfg.SnapshotEvery),
					"--data", in.data, "--http", addr, "--log-level", cfg.InstanceLogLevel, "--log-kafka", cfg.InstanceLogKafka}
				if in.id != "" {
					args = append(args, "--instance-id", in.id)
				}
				return args
			},
			onExit: c.exitedByItself,
		}
		c.inst = append(c.inst, in)
	}
	return c, nil
}

// exitedByItself records an exit the soak did not cause and restarts the
// process: an instance that dies when its broker goes away is a finding,
// reported in the summary, not a reason to stop the run.
func (c *cluster) exitedByItself(p *proc, err error) {
	msg := fmt.Sprintf("%s exited by itself (%v) at %s; the end of its log:\n%s", p.name, err, time.Now().Format("15:04:05.000"), indent(p.logTail(12)))
	c.mu.Lock()
	c.unexpected = append(c.unexpected, msg)
	c.mu.Unlock()
	c.stats.unexpectedExits.Add(1)
	c.logf("%s exited by itself (%v); restarting it in 1s", p.name, err)
	time.Sleep(time.Second)
	if p.Running() {
		return
	}
	if err := c.startProc(context.Background(), p); err != nil {
		c.logf("restarting %s: %v", p.name, err)
	}
}

// startProc starts p and waits until it serves.
func (c *cluster) startProc(ctx context.Context, p *proc) error {
	if err := p.start(); err != nil {
		return err
	}
	if p == c.broker {
		return waitTCP(ctx, c.brokers[0], p.exited(), 30*time.Second)
	}
	for _, in := range c.inst {
		if in.proc == p {
			return waitHTTP(ctx, in.url+"/healthz", p.exited(), 90*time.Second)
		}
	}
	return nil
}

// start starts the broker and then the instances.
func (c *cluster) start(ctx context.Context) error {
	if c.broker != nil {
		if err := c.startProc(ctx, c.broker); err != nil {
			return fmt.Errorf("broker: %w; its log:\n%s", err, c.broker.logTail(20))
		}
		c.logf("broker (kfake, pid %d) at %s, data in %s", c.broker.pid(), c.brokers[0], filepath.Join(c.dir, "broker"))
	}
	// The first instance creates the topics; the others then find them.
	for _, in := range c.inst {
		if err := c.startProc(ctx, in.proc); err != nil {
			return fmt.Errorf("%s: %w; its log:\n%s", in.name, err, in.logTail(20))
		}
		c.logf("%s (pid %d) at %s, data in %s", in.name, in.pid(), in.url, in.data)
	}
	return nil
}

// urls returns the instances' HTTP base URLs.
func (c *cluster) urls() []string {
	out := make([]string, len(c.inst))
	for i, in := range c.inst {
		out[i] = in.url
	}
	return out
}

// killInstance SIGKILLs in and restarts it after down, on its data
// directory or, when wipe, on an empty one.
func (c *cluster) killInstance(ctx context.Context, in *instance, down time.Duration, wipe bool) error {
	in.kill()
	c.stats.kills.Add(1)
	how := "same data dir"
	if wipe {
		c.stats.wipes.Add(1)
		how = "EMPTY data dir, as a new instance ID"
		if in.id != "" {
			c.stats.wipesKeptID.Add(1)
			how = "EMPTY data dir, with --instance-id " + in.id
		}
		if err := os.RemoveAll(in.data); err != nil {
			return err
		}
	}
	c.logf("chaos: SIGKILL %s; restart in %s on its %s", in.name, down.Round(time.Millisecond), how)
	sleepCtx(ctx, down)
	if err := c.startProc(ctx, in.proc); err != nil {
		return fmt.Errorf("restart %s: %w; its log:\n%s", in.name, err, in.logTail(20))
	}
	c.logf("chaos: %s is back (pid %d)", in.name, in.pid())
	return nil
}

// pauseInstance SIGSTOPs in for d, then SIGCONTs it.
func (c *cluster) pauseInstance(ctx context.Context, in *instance, d time.Duration) {
	if !in.pause() {
		return
	}
	c.stats.pauses.Add(1)
	c.logf("chaos: SIGSTOP %s for %s (group session timeout 10s)", in.name, d.Round(time.Millisecond))
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	in.resume()
	c.logf("chaos: SIGCONT %s", in.name)
}

// restartBroker stops the broker (SIGKILL, or SIGTERM when graceful) and
// starts it again after down, on its data: the kfake child, or a node of
// an external cluster through the configured commands.
func (c *cluster) restartBroker(ctx context.Context, rng *rand.Rand, down time.Duration) error {
	if c.broker == nil {
		node := 1 + rng.IntN(c.cfg.BrokerNodes)
		c.logf("chaos: broker node %d: %s", node, c.cfg.BrokerKillCmd)
		if err := c.hook(ctx, c.cfg.BrokerKillCmd, node); err != nil {
			return fmt.Errorf("--broker-kill-cmd: %w", err)
		}
		c.stats.brokerRestarts.Add(1)
		sleepCtx(ctx, down)
		c.logf("chaos: broker node %d: %s", node, c.cfg.BrokerStartCmd)
		if err := c.hook(context.WithoutCancel(ctx), c.cfg.BrokerStartCmd, node); err != nil {
			return fmt.Errorf("--broker-start-cmd: %w", err)
		}
		c.logf("chaos: broker node %d is back", node)
		return nil
	}
	graceful := c.cfg.BrokerStop == "graceful" || c.cfg.BrokerStop == "both" && rng.IntN(2) == 0
	if graceful {
		c.broker.stop(30 * time.Second)
	} else {
		c.broker.kill()
	}
	c.stats.brokerRestarts.Add(1)
	how := "SIGKILL"
	if graceful {
		how = "SIGTERM"
	}
	c.logf("chaos: %s the broker; restart in %s on its data", how, down.Round(time.Millisecond))
	sleepCtx(ctx, down)
	if err := c.startProc(context.WithoutCancel(ctx), c.broker); err != nil {
		return fmt.Errorf("restart the broker: %w; its log:\n%s", err, c.broker.logTail(20))
	}
	c.logf("chaos: the broker is back (pid %d)", c.broker.pid())
	return nil
}

// hook runs a broker command, {node} replaced by the node number.
func (c *cluster) hook(ctx context.Context, command string, node int) error {
	command = strings.ReplaceAll(command, "{node}", strconv.Itoa(node))
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", command, err, indent(string(out)))
	}
	return nil
}

// heal resumes paused instances and starts stopped ones, then waits until
// every instance answers /readyz. An instance that exits meanwhile is
// restarted by exitedByItself; heal waits for the new process.
func (c *cluster) heal(ctx context.Context) error {
	if c.broker != nil && !c.broker.Running() {
		if err := c.startProc(ctx, c.broker); err != nil {
			return err
		}
	}
	for _, in := range c.inst {
		in.resume()
		if !in.Running() {
			if err := c.startProc(ctx, in.proc); err != nil {
				c.logf("healing: %s: %v", in.name, err)
			}
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for _, in := range c.inst {
		for {
			err := waitHTTP(ctx, in.url+"/readyz", in.exited(), time.Until(deadline))
			if err == nil {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("%s not ready: %w; its log:\n%s", in.name, err, in.logTail(20))
			}
			sleepCtx(ctx, time.Second) // it exited: exitedByItself restarts it
		}
	}
	return nil
}

// shutdown stops the instances, then the broker.
func (c *cluster) shutdown() {
	var wg sync.WaitGroup
	for _, in := range c.inst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in.stop(20 * time.Second)
		}()
	}
	wg.Wait()
	if c.broker != nil {
		c.broker.stop(20 * time.Second)
	}
}

// unexpectedExits returns the exits the soak did not cause.
func (c *cluster) unexpectedExits() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.unexpected...)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
