// Package soak is Strata's chaos soak: it runs `strata serve` instances as
// separate processes against a broker in its own process, drives a
// randomized workload of account and order commands at them (over HTTP
// and straight through the commands topics, with resent command IDs and
// stale expected versions), and meanwhile SIGKILLs and restarts instances
// (sometimes on an empty data directory), SIGSTOPs them for longer than
// the group session timeout, and stops and restarts the broker. Then it
// reads the topics and every instance's HTTP API and checks that nothing
// acknowledged was lost, nothing was applied twice, and everything served
// equals a replay of the events topic.
//
// # Usage
//
//	sum, err := soak.Run(ctx, soak.Config{Exec: "/path/to/strata", Duration: time.Minute})
//	if err != nil { … }          // the soak could not run
//	sum.Print(os.Stdout)
//	if !sum.Passed() { … }       // an invariant broke: sum lists the first problems
package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/aggregates/order"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config configures a soak. Zero values take the defaults given.
type Config struct {
	// Exec is the strata binary, run as `strata broker` and `strata
	// serve`. Required.
	Exec string
	// Duration of the workload. Default 60s. Chaos stops before the end
	// (the last fifth, at least 10s and at most a minute) so the cluster
	// settles; the checks come after.
	Duration time.Duration
	// Instances of `strata serve`. Default 2.
	Instances int
	// Clients sending commands one at a time; half over HTTP, the other
	// half straight to the commands topics. Default 6.
	Clients int
	// Seed of the workload and the chaos. Default: from the clock. Timing
	// is not reproducible, so neither is a run; the seed fixes the mix.
	Seed uint64
	// Brokers of an existing cluster. Default none: a kfake broker in a
	// child process (`strata broker`), persisted in the run's directory.
	Brokers []string
	// BrokerKillCmd and BrokerStartCmd stop and start a node of Brokers
	// (shell commands; {node} is replaced by a node number from 1 to
	// BrokerNodes). Without them, broker restarts are skipped.
	BrokerKillCmd, BrokerStartCmd string
	// BrokerNodes is the number of nodes of Brokers. Default len(Brokers).
	BrokerNodes int
	// BrokerStop is how the embedded broker is stopped before a restart:
	// "graceful" (SIGTERM: it closes its files and saves its sessions
	// and open transactions), "kill" (SIGKILL) or "both", chosen at random
	// each time. Default "graceful": kfake's recovery from a SIGKILL does
	// not keep transactions atomic (an open transaction can be aborted
	// without an abort marker, or become visible to read_committed
	// readers without having committed), which real Kafka never does,
	// so a failure with "kill" may be the broker's.
	BrokerStop string
	// ReplicationFactor of the topics. Default -1, the broker's.
	ReplicationFactor int
	// Partitions of the topics. Default 4.
	Partitions int
	// SnapshotEvery is the instances' --snapshot-every. Default 20, so
	// that an instance restarted on an empty directory restores from
	// snapshots.
	SnapshotEvery int
	// Accounts the workload uses. Default 40.
	Accounts int
	// Namespace of the topics. Default soak<seed>.
	Namespace string
	// Chaos lists the chaos actions to take, comma-separated: kill (SIGKILL
	// an instance, restart it), pause (SIGSTOP it past the group session
	// timeout), broker (stop and restart the broker); "none" for none.
	// Default "kill,pause,broker".
	Chaos string
	// ChaosEvery is the mean time between chaos actions. Default 4s.
	ChaosEvery time.Duration
	// PauseFor is how long a SIGSTOP lasts, at least. Default 12s: longer
	// than the 10s group session timeout.
	PauseFor time.Duration
	// InstanceLogLevel is the instances' --log-level. Default info; debug
	// logs each command decided and each transaction's consumed offsets.
	InstanceLogLevel string
	// InstanceLogKafka is the instances' --log-kafka (franz-go's own
	// logs). Default off.
	InstanceLogKafka string
	// Dir is where the run's directory is made. Default os.TempDir().
	Dir string
	// Keep keeps the run's directory (data and logs). It is kept anyway
	// when the soak fails.
	Keep bool
	// Progress receives a line every ProgressEvery (default 5s) and one per
	// chaos action. Default io.Discard.
	Progress      io.Writer
	ProgressEvery time.Duration
}

func (c *Config) setDefaults() {
	if c.Duration == 0 {
		c.Duration = time.Minute
	}
	if c.Instances == 0 {
		c.Instances = 2
	}
	if c.Clients == 0 {
		c.Clients = 6
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano()%1e6) + 1
	}
	if c.BrokerNodes == 0 {
		c.BrokerNodes = len(c.Brokers)
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.BrokerStop == "" {
		c.BrokerStop = "graceful"
	}
	if c.Partitions == 0 {
		c.Partitions = 4
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = 20
	}
	if c.Accounts == 0 {
		c.Accounts = 40
	}
	if c.Namespace == "" {
		c.Namespace = fmt.Sprintf("soak%d", c.Seed)
	}
	if c.InstanceLogLevel == "" {
		c.InstanceLogLevel = "info"
	}
	if c.InstanceLogKafka == "" {
		c.InstanceLogKafka = "off"
	}
	if c.Chaos == "" {
		c.Chaos = "kill,pause,broker"
	}
	if c.ChaosEvery == 0 {
		c.ChaosEvery = 4 * time.Second
	}
	if c.PauseFor == 0 {
		c.PauseFor = 12 * time.Second
	}
	if c.Dir == "" {
		c.Dir = os.TempDir()
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = 5 * time.Second
	}
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var problems []error
	if c.Exec == "" {
		problems = append(problems, errors.New("the strata binary (Exec) is required"))
	}
	if c.Duration < 5*time.Second {
		problems = append(problems, fmt.Errorf("duration %s: want at least 5s", c.Duration))
	}
	if c.Instances < 1 || c.Instances > 16 {
		problems = append(problems, fmt.Errorf("instances %d: want 1 to 16", c.Instances))
	}
	if c.Clients < 1 || c.Clients > 256 {
		problems = append(problems, fmt.Errorf("clients %d: want 1 to 256", c.Clients))
	}
	if c.Partitions < 1 || c.Partitions > 1000 {
		problems = append(problems, fmt.Errorf("partitions %d: want 1 to 1000", c.Partitions))
	}
	if c.Accounts < 1 {
		problems = append(problems, fmt.Errorf("accounts %d: want at least 1", c.Accounts))
	}
	if (c.BrokerKillCmd == "") != (c.BrokerStartCmd == "") {
		problems = append(problems, errors.New("the broker kill and start commands go together: give both or neither"))
	}
	if c.BrokerKillCmd != "" && len(c.Brokers) == 0 {
		problems = append(problems, errors.New("broker kill and start commands need the brokers they act on"))
	}
	switch c.BrokerStop {
	case "kill", "graceful", "both":
	default:
		problems = append(problems, fmt.Errorf("broker stop %q: want kill, graceful or both", c.BrokerStop))
	}
	if _, err := c.actions(); err != nil {
		problems = append(problems, err)
	}
	if c.PauseFor < 11*time.Second {
		problems = append(problems, fmt.Errorf("pause %s: want more than the 10s group session timeout", c.PauseFor))
	}
	if c.ChaosEvery <= 0 {
		problems = append(problems, fmt.Errorf("chaos interval %s: want more than zero", c.ChaosEvery))
	}
	return errors.Join(problems...)
}

// actions parses Chaos into a set of actions.
func (c *Config) actions() ([numActs]bool, error) {
	var on [numActs]bool
	if c.Chaos == "none" {
		return on, nil
	}
	for _, a := range strings.Split(c.Chaos, ",") {
		switch strings.TrimSpace(a) {
		case "kill":
			on[actKill] = true
		case "pause":
			on[actPause] = true
		case "broker":
			on[actBroker] = true
		default:
			return on, fmt.Errorf("chaos %q: want a list of kill, pause and broker, or none", c.Chaos)
		}
	}
	return on, nil
}

// stats counts what happened during the run. Safe for concurrent use.
type stats struct {
	kills, wipes, wipesKeptID, pauses, brokerRestarts, unexpectedExits atomic.Int64
	rywReads, checkedAggregates                                        atomic.Int64
}

// soak is one run.
type soak struct {
	cfg      Config
	names    kafka.Names
	cluster  *cluster
	world    *world
	ledger   *ledger
	results  *dispatcher
	stats    *stats
	problems *problems
	start    time.Time

	// For the progress lines: answers so far and when the count last
	// changed.
	lastAnswered int64
	lastAnswer   time.Time

	logMu sync.Mutex
}

func (s *soak) logf(format string, args ...any) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	fmt.Fprintf(s.cfg.Progress, "soak %6.1fs: %s\n", time.Since(s.start).Seconds(), fmt.Sprintf(format, args...))
}

func (s *soak) kafkaOpts() []kgo.Opt {
	return []kgo.Opt{kgo.SeedBrokers(s.cluster.brokers...)}
}

// ConfigError is Run's error for a configuration that cannot run; it
// lists every problem.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return "soak configuration: " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Run runs a soak: it starts the processes, drives the workload and the
// chaos for cfg.Duration, lets the cluster settle and checks it. An error
// means the soak could not run; the invariants' verdict is in the
// summary.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, &ConfigError{Err: err}
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(cfg.Dir, "strata-soak-")
	if err != nil {
		return nil, err
	}
	s := &soak{
		cfg: cfg, names: kafka.Names{Namespace: cfg.Namespace},
		world: newWorld(cfg.Accounts), ledger: newLedger(), results: newDispatcher(),
		stats: &stats{}, problems: &problems{}, start: time.Now(),
	}
	sum := &Summary{Config: cfg, Dir: dir}
	defer func() {
		if !cfg.Keep && sum.Passed() {
			os.RemoveAll(dir)
			sum.Dir = ""
		}
	}()
	if s.cluster, err = newCluster(&s.cfg, dir, s.stats, s.logf); err != nil {
		return sum, err
	}
	defer s.cluster.shutdown()
	where := "an embedded kfake broker in its own process"
	if len(cfg.Brokers) > 0 {
		where = strings.Join(cfg.Brokers, ",")
	}
	s.logf("seed %d, namespace %s, %d instance(s), %d client(s), broker: %s; data and logs in %s",
		cfg.Seed, cfg.Namespace, cfg.Instances, cfg.Clients, where, dir)
	if len(cfg.Brokers) > 0 && cfg.BrokerKillCmd == "" {
		s.logf("note: no --broker-kill-cmd/--broker-start-cmd: broker restarts are skipped")
	}
	if err := s.cluster.start(ctx); err != nil {
		sum.Err = err
		return sum, err
	}

	rctx, stopResults := context.WithCancel(ctx)
	resultsDone := make(chan struct{})
	go func() {
		defer close(resultsDone)
		if err := s.results.run(rctx, s.kafkaOpts(), s.names.Results(account.Name), s.names.Results(order.Name)); err != nil {
			s.logf("results reader: %v", err)
		}
	}()
	defer func() { stopResults(); <-resultsDone }()

	begin := time.Now()
	s.lastAnswer = begin
	tail := min(max(cfg.Duration/5, 10*time.Second), time.Minute)
	cctx, stopChaos := context.WithCancel(ctx)
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		s.chaos(cctx, begin.Add(cfg.Duration-tail))
	}()
	stop := make(chan struct{})
	var clients sync.WaitGroup
	nHTTP := (cfg.Clients + 1) / 2
	for i := range cfg.Clients {
		via := "http"
		if i >= nHTTP {
			via = "kafka"
		}
		clients.Add(1)
		go func() {
			defer clients.Done()
			s.client(ctx, i+1, via, stop)
		}()
	}
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				s.progress(begin)
			}
		}
	}()
	sleepCtx(ctx, cfg.Duration)
	close(stop)
	<-progressDone
	s.logf("workload stopping: waiting for the commands in flight")
	clients.Wait()
	stopChaos()
	<-chaosDone
	sum.Duration = time.Since(begin)
	if ctx.Err() != nil {
		return sum, ctx.Err()
	}
	s.logf("healing: every process up and ready")
	healStart := time.Now()
	if err := s.cluster.heal(ctx); err != nil {
		s.problems.add(probInconsistent, "after the run: %v", err)
	}
	m, err := s.check(ctx, func() { sum.Settled = time.Since(healStart) })
	sum.Checked = time.Since(healStart) - sum.Settled
	if err != nil {
		sum.Err = err
		s.fill(sum, nil)
		return sum, err
	}
	s.fill(sum, m)
	return sum, nil
}

func (s *soak) progress(begin time.Time) {
	l := s.ledger
	if answered := l.acked.Load() + l.rejected.Load() + l.conflicts.Load(); answered != s.lastAnswered {
		s.lastAnswered, s.lastAnswer = answered, time.Now()
	} else if stalled := time.Since(s.lastAnswer); stalled > 30*time.Second {
		s.logf("STALLED: no new command answered for %s (see /v1/status and the logs of the instances)", stalled.Round(time.Second))
	}
	down := ""
	for _, in := range s.cluster.inst {
		switch {
		case !in.Running():
			down += fmt.Sprintf(", instance %d down", in.n)
		case in.Paused():
			down += fmt.Sprintf(", instance %d paused", in.n)
		}
	}
	if b := s.cluster.broker; b != nil && !b.Running() {
		down += ", broker down"
	}
	s.logf("%3.0fs of %s: %d commands sent, %d acknowledged, %d rejected, %d conflicts, %d resends, %d failed attempts; %d kills, %d pauses, %d broker restarts%s",
		time.Since(begin).Seconds(), s.cfg.Duration, l.sent.Load(), l.acked.Load(), l.rejected.Load(), l.conflicts.Load(),
		l.resends.Load(), l.failures.Load(), s.stats.kills.Load(), s.stats.pauses.Load(), s.stats.brokerRestarts.Load(), down)
}
