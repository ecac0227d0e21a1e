package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/internal/devbroker"
	"github.com/strata-es/strata/internal/node"
	"github.com/strata-es/strata/projections"
	"github.com/strata-es/strata/projections/accounts"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The domains and views this binary runs.
var (
	builtinTypes       = []aggregates.Type{account.Type}
	builtinProjections = []projections.Projection{accounts.Projection}
)

type nodeFlags struct {
	data, http, namespace string
	partitions            int
	log                   logFlags
}

func (n *nodeFlags) register(fs *flag.FlagSet, defaultData string) {
	fs.StringVar(&n.data, "data", defaultData, "data directory (state store; for dev also the embedded broker's log)")
	fs.StringVar(&n.http, "http", "127.0.0.1:8080", "address the HTTP API listens on")
	fs.StringVar(&n.namespace, "namespace", "strata", "topic namespace: topics are NAMESPACE.AGGREGATE.events etc.")
	fs.IntVar(&n.partitions, "partitions", 12, "partitions of the topics Strata creates (must match existing ones)")
	n.log.register(fs)
}

func (n *nodeFlags) config(opts []kgo.Opt, stderr io.Writer) (node.Config, error) {
	log, err := n.log.logger(stderr)
	if err != nil {
		return node.Config{}, err
	}
	if n.partitions < 1 || n.partitions > 10000 {
		return node.Config{}, fmt.Errorf("--partitions %d: want 1 to 10000", n.partitions)
	}
	return node.Config{
		Opts: opts, Namespace: n.namespace, Partitions: int32(n.partitions),
		DataDir: n.data, HTTPAddr: n.http, Log: log,
		Types: builtinTypes, Projections: builtinProjections,
	}, nil
}

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	var nf nodeFlags
	nf.register(fs, ".strata")
	kafkaPort := fs.Int("kafka-port", 9092, "port of the embedded Kafka broker on 127.0.0.1 (0: any free port)")
	pos, err := parse(fs, args, stderr, "[flags]")
	if err != nil {
		return flagExit(err)
	}
	if len(pos) > 0 {
		return usageError(fs, stderr, "unexpected argument %q", pos[0])
	}
	if *kafkaPort < 0 || *kafkaPort > 65535 {
		return usageError(fs, stderr, "--kafka-port %d: want 0 to 65535", *kafkaPort)
	}
	cfg, err := nf.config(nil, stderr)
	if err != nil {
		return usageError(fs, stderr, "%v", err)
	}
	cluster, addr, err := devbroker.Start(devbroker.Options{DataDir: filepath.Join(nf.data, "kafka"), Port: *kafkaPort})
	if err != nil {
		fmt.Fprintf(stderr, "strata dev: %v\n", err)
		return exitFailure
	}
	defer cluster.Close()
	fmt.Fprintf(stdout, "strata dev: embedded Kafka broker at %s (data in %s)\n", addr, filepath.Join(nf.data, "kafka"))
	cfg.Opts = []kgo.Opt{kgo.SeedBrokers(addr)}
	cfg.OnReady = func(url string) {
		fmt.Fprintf(stdout, "strata dev: HTTP API at %s (Ctrl-C stops)\n", url)
	}
	if err := node.Run(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "strata dev: %v\n", err)
		return exitFailure
	}
	fmt.Fprintln(stdout, "strata dev: stopped")
	return exitOK
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var nf nodeFlags
	nf.register(fs, "strata-data")
	brokers := fs.String("brokers", envOr("STRATA_BROKERS", ""), "comma-separated Kafka bootstrap brokers (env STRATA_BROKERS)")
	pos, err := parse(fs, args, stderr, "--brokers HOST:PORT,... [flags]")
	if err != nil {
		return flagExit(err)
	}
	if len(pos) > 0 {
		return usageError(fs, stderr, "unexpected argument %q", pos[0])
	}
	var seeds []string
	for _, b := range strings.Split(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			seeds = append(seeds, b)
		}
	}
	if len(seeds) == 0 {
		return usageError(fs, stderr, "--brokers is required (or set STRATA_BROKERS); for a local broker, use 'strata dev'")
	}
	cfg, err := nf.config([]kgo.Opt{kgo.SeedBrokers(seeds...)}, stderr)
	if err != nil {
		return usageError(fs, stderr, "%v", err)
	}
	cfg.OnReady = func(url string) { fmt.Fprintf(stdout, "strata serve: HTTP API at %s\n", url) }
	if err := node.Run(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "strata serve: %v\n", err)
		return exitFailure
	}
	return exitOK
}
