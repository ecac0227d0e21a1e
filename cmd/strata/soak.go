package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/strata-es/strata/internal/soak"
)

// runSoak runs the chaos soak (internal/soak) with this binary as the
// broker and the instances, prints its summary and exits 1 when an
// invariant broke.
func runSoak(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	var c soak.Config
	fs.DurationVar(&c.Duration, "duration", time.Minute, "how long the workload and the chaos run (the checks follow)")
	fs.IntVar(&c.Instances, "instances", 2, "strata serve processes")
	fs.IntVar(&c.Clients, "clients", 6, "clients sending commands, half over HTTP and half to the commands topics")
	var seed uint64
	fs.Uint64Var(&seed, "seed", 0, "seed of the workload and the chaos (0: from the clock; printed)")
	var brokers listFlag
	fs.Var(&brokers, "brokers", "an existing Kafka cluster (default: an embedded kfake broker in a child process)")
	fs.StringVar(&c.BrokerKillCmd, "broker-kill-cmd", "", "with --brokers: shell command that kills broker node {node}, e.g. 'compose/kafka-kill-node.sh {node}'")
	fs.StringVar(&c.BrokerStartCmd, "broker-start-cmd", "", "with --brokers: shell command that starts broker node {node} again and waits for it")
	fs.IntVar(&c.BrokerNodes, "broker-nodes", 0, "nodes {node} ranges over (default: the number of --brokers)")
	fs.StringVar(&c.BrokerStop, "broker-stop", "graceful", "how the embedded broker is stopped before a restart: graceful (SIGTERM), kill (SIGKILL; kfake's crash recovery breaks transactions, see README) or both, at random")
	fs.IntVar(&c.ReplicationFactor, "replication-factor", -1, "replication factor of the topics (-1: the broker's default)")
	fs.IntVar(&c.Partitions, "partitions", 4, "partitions of the topics")
	fs.IntVar(&c.SnapshotEvery, "snapshot-every", 20, "the instances' --snapshot-every (small, so restores from snapshots happen)")
	fs.IntVar(&c.Accounts, "accounts", 40, "accounts the workload uses")
	fs.StringVar(&c.Chaos, "chaos", "kill,pause,broker", "chaos actions, comma-separated: kill (SIGKILL an instance and restart it), pause (SIGSTOP it past the session timeout), broker (restart the broker); none for none")
	fs.DurationVar(&c.ChaosEvery, "chaos-every", 4*time.Second, "mean time between chaos actions")
	fs.DurationVar(&c.PauseFor, "pause", 12*time.Second, "how long an instance stays SIGSTOPped (more than the 10s group session timeout)")
	fs.StringVar(&c.Dir, "dir", "", "where to make the run's directory of data and logs (default: the system's temp dir)")
	fs.StringVar(&c.InstanceLogLevel, "instance-log-level", "info", "the instances' --log-level (debug: each command decided and each transaction's consumed offsets)")
	fs.StringVar(&c.InstanceLogKafka, "instance-log-kafka", "off", "the instances' --log-kafka: franz-go's own logs (info: each step of every transaction and group session)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the data and logs (they are kept anyway when the soak fails)")
	fs.DurationVar(&c.ProgressEvery, "progress", 5*time.Second, "interval of the progress lines")
	pos, err := parse(fs, args, stderr, "[flags]")
	if err != nil {
		return flagExit(err)
	}
	if len(pos) > 0 {
		return usageError(fs, stderr, "unexpected argument %q", pos[0])
	}
	c.Seed, c.Brokers, c.Progress = seed, brokers, stdout
	if c.Duration < 5*time.Second {
		return usageError(fs, stderr, "--duration %s: want at least 5s", c.Duration)
	}
	// Zero means "the default" in soak.Config; on the command line it is
	// a mistake.
	for _, f := range []struct {
		name string
		v    int
	}{{"instances", c.Instances}, {"clients", c.Clients}, {"partitions", c.Partitions}, {"accounts", c.Accounts}, {"snapshot-every", c.SnapshotEvery}} {
		if f.v < 1 {
			return usageError(fs, stderr, "--%s %d: want at least 1", f.name, f.v)
		}
	}
	if c.ChaosEvery <= 0 || c.ProgressEvery <= 0 {
		return usageError(fs, stderr, "--chaos-every and --progress must be more than zero")
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "strata soak: finding this binary: %v\n", err)
		return exitFailure
	}
	c.Exec = exe
	sum, err := soak.Run(ctx, c)
	if ce := (*soak.ConfigError)(nil); errors.As(err, &ce) {
		return usageError(fs, stderr, "%v", ce.Err)
	}
	if sum != nil {
		sum.Print(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "strata soak: %v\n", err)
		return exitFailure
	}
	if !sum.Passed() {
		return exitFailure
	}
	return exitOK
}
