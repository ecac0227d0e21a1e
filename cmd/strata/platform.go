package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/redis/go-redis/v9"
	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/aggregates/order"
	"github.com/strata-es/strata/internal/config"
	"github.com/strata-es/strata/internal/console"
	"github.com/strata-es/strata/internal/devbroker"
	"github.com/strata-es/strata/internal/httpapi"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/node"
	"github.com/strata-es/strata/internal/processor"
	"github.com/strata-es/strata/internal/registry"
	"github.com/strata-es/strata/internal/sinks/cache"
	"github.com/strata-es/strata/internal/sinks/postgres"
	"github.com/strata-es/strata/internal/sinks/search"
	"github.com/strata-es/strata/projections"
	"github.com/strata-es/strata/projections/accounts"
	"github.com/strata-es/strata/projections/customers"
	"github.com/strata-es/strata/projections/orders"
	"github.com/strata-es/strata/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// The domains and views this binary runs.
var (
	builtinTypes       = []aggregates.Type{account.Type, order.Type}
	builtinProjections = []projections.Projection{accounts.Projection, orders.Projection, customers.Projection}
)

// nodeFlags are the flags of dev and serve. They override the config file
// (--config), which overrides the defaults.
type nodeFlags struct {
	fs         *flag.FlagSet
	configPath string
	c          config.Config
}

func (n *nodeFlags) register(fs *flag.FlagSet, defaultData string) {
	n.fs = fs
	d := config.Defaults()
	d.Data = defaultData
	n.c = d
	fs.StringVar(&n.configPath, "config", "", "YAML config file (flags override it; see README)")
	fs.StringVar(&n.c.Data, "data", d.Data, "data directory (state store; for dev also the embedded broker's log)")
	fs.StringVar(&n.c.InstanceID, "instance-id", "", "this process's identity in the groups and transactional IDs, unique among running processes (default: one kept in the data directory); a stable one (a pod name) lets a replacement on an empty disk take over at once")
	fs.StringVar(&n.c.HTTP, "http", d.HTTP, "address the HTTP API listens on")
	fs.StringVar(&n.c.AuthTokenFile, "auth-token-file", "", "file of the bearer tokens the HTTP API requires, one per line: TOKEN, read-write TOKEN or read-only TOKEN (none: no authentication)")
	fs.StringVar(&n.c.Namespace, "namespace", d.Namespace, "topic namespace: topics are NAMESPACE.AGGREGATE.events etc.")
	fs.IntVar(&n.c.Partitions, "partitions", d.Partitions, "partitions of the topics Strata creates (must match existing ones)")
	fs.IntVar(&n.c.ReplicationFactor, "replication-factor", d.ReplicationFactor, "replication factor of created topics (-1: broker default)")
	fs.IntVar(&n.c.SnapshotEvery, "snapshot-every", d.SnapshotEvery, "write an aggregate's snapshot every N of its events")
	fs.DurationVar(&n.c.DedupeWindow, "dedupe-window", d.DedupeWindow, "how long a command ID is remembered for resends")
	fs.DurationVar(&n.c.ReadWait, "read-wait", d.ReadWait, "how long a read given ?position= waits for it by default")
	fs.DurationVar(&n.c.ReadWaitMax, "read-wait-max", d.ReadWaitMax, "the longest ?wait= a read may ask for")
	fs.StringVar(&n.c.Metrics, "metrics", d.Metrics, "who may read /metrics: token (a token when --auth-token-file has any; read-only suffices), open, or off")
	fs.IntVar(&n.c.MaxConnections, "max-connections", d.MaxConnections, "HTTP connections open at once; more wait until one closes (0: no bound)")
	fs.Int64Var(&n.c.ProjectionMaxLag, "projection-max-lag", d.ProjectionMaxLag, "offsets a projection may be behind with /readyz still ready (0: no bound)")
	fs.StringVar(&n.c.Log.Level, "log-level", d.Log.Level, "log level: debug (also each command and request), info, warn, error")
	fs.StringVar(&n.c.Log.Format, "log-format", d.Log.Format, "log format: text or json (one object per line)")
	fs.StringVar(&n.c.Log.Kafka, "log-kafka", d.Log.Kafka, "level of the Kafka client's own logs, with component=kgo: off, error, warn, info (each step of every transaction and group session), debug")
	fs.StringVar(&n.c.SchemaRegistry.URL, "schema-registry", "", "URL of a Confluent-compatible schema registry to register the schemas in")
	fs.StringVar(&n.c.SchemaRegistry.WireFormat, "wire-format", d.SchemaRegistry.WireFormat, "format of the events written: single-object (Avro's own) or confluent (needs --schema-registry)")
	fs.StringVar(&n.c.Tracing.Exporter, "tracing-exporter", d.Tracing.Exporter, "where OpenTelemetry spans go: none, otlp or stdout (an incoming traceparent reaches the events either way)")
	fs.StringVar(&n.c.Tracing.Endpoint, "tracing-endpoint", "", "OTLP endpoint, host:port or URL (default: OTEL_EXPORTER_OTLP_ENDPOINT, else localhost:4318, or 4317 for grpc)")
	fs.StringVar(&n.c.Tracing.Protocol, "tracing-protocol", "", "OTLP protocol: http/protobuf or grpc (default: OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf)")
	fs.Var((*headersFlag)(&n.c.Tracing.Headers), "tracing-headers", "headers of OTLP exports, NAME=VALUE,... with URL-encoded values (default: OTEL_EXPORTER_OTLP_HEADERS)")
	fs.BoolVar(&n.c.Tracing.Insecure, "tracing-insecure", false, "send OTLP to a host:port endpoint without TLS")
	fs.Float64Var(&n.c.Tracing.SampleRatio, "tracing-sample-ratio", d.Tracing.SampleRatio, "share of the traces starting at Strata to record, 0 to 1 (a traced command's sampling decision is kept)")
}

// withRegistry registers the catalog's schemas in the configured registry
// and returns the node configuration using it.
func withRegistry(ctx context.Context, c config.Config, cfg node.Config, stdout io.Writer) (node.Config, error) {
	if c.SchemaRegistry.URL == "" {
		return cfg, nil
	}
	cl, err := sr.NewClient(sr.URLs(c.SchemaRegistry.URL))
	if err != nil {
		return cfg, fmt.Errorf("schema registry: %w", err)
	}
	cat := schemas.Default()
	reg, regs, err := registry.Register(ctx, cl, cat, schemas.UpcastedBy(builtinTypes...))
	if err != nil {
		return cfg, fmt.Errorf("schema registry %s: %w", c.SchemaRegistry.URL, err)
	}
	cfg.Catalog = cat.WithRegistry(reg, c.SchemaRegistry.WireFormat == "confluent")
	fmt.Fprintf(stdout, "strata: %d schema versions registered in %s; writing %s\n", len(regs), c.SchemaRegistry.URL, c.SchemaRegistry.WireFormat)
	return cfg, nil
}

// registerKafka adds the flags that connect to a cluster (serve).
func (n *nodeFlags) registerKafka(fs *flag.FlagSet) {
	fs.Var((*listFlag)(&n.c.Brokers), "brokers", "comma-separated Kafka bootstrap brokers (env STRATA_BROKERS)")
	fs.BoolVar(&n.c.TLS.Enabled, "tls", false, "connect to Kafka with TLS")
	fs.StringVar(&n.c.TLS.CAFile, "tls-ca", "", "PEM file of the CA that signed the brokers' certificates")
	fs.StringVar(&n.c.TLS.CertFile, "tls-cert", "", "PEM client certificate (mutual TLS)")
	fs.StringVar(&n.c.TLS.KeyFile, "tls-key", "", "PEM client key (mutual TLS)")
	fs.StringVar(&n.c.SASL.Mechanism, "sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	fs.StringVar(&n.c.SASL.Username, "sasl-user", "", "SASL user name")
	fs.StringVar(&n.c.SASL.PasswordFile, "sasl-password-file", "", "file holding the SASL password")
	fs.StringVar(&n.c.SASL.PasswordEnv, "sasl-password-env", "", "environment variable holding the SASL password")
}

// resolve loads the config file, puts the flags that were set on top of it,
// validates the result and builds the node's configuration.
func (n *nodeFlags) resolve(stderr io.Writer) (config.Config, node.Config, error) {
	if n.configPath != "" {
		fileCfg, err := config.Load(n.configPath)
		if err != nil {
			return n.c, node.Config{}, err
		}
		// Parse the flags given on the command line again, over the
		// file's values: they override it, the rest of the file stands.
		var args []string
		n.fs.Visit(func(f *flag.Flag) {
			if f.Name != "config" {
				args = append(args, "--"+f.Name+"="+f.Value.String())
			}
		})
		n.c = fileCfg
		if err := n.fs.Parse(args); err != nil {
			return n.c, node.Config{}, err
		}
	}
	c := n.c
	if len(c.Brokers) == 0 {
		c.Brokers = splitList(os.Getenv("STRATA_BROKERS"))
	}
	if err := c.Validate(); err != nil {
		return c, node.Config{}, err
	}
	log, err := newLogger(c.Log, stderr)
	if err != nil {
		return c, node.Config{}, err
	}
	var tokens *httpapi.Tokens
	if c.AuthTokenFile != "" {
		if tokens, err = httpapi.LoadTokens(c.AuthTokenFile); err != nil {
			return c, node.Config{}, err
		}
		if tokens.Len() == 0 {
			log.Warn("the auth token file holds no tokens: the HTTP API requires none", "file", c.AuthTokenFile)
		}
	}
	var viewNames []string
	for _, p := range builtinProjections {
		viewNames = append(viewNames, p.Name)
	}
	if err := c.Sinks.CheckViews(viewNames); err != nil {
		return c, node.Config{}, err
	}
	sinks, err := viewSinks(c.Sinks)
	if err != nil {
		return c, node.Config{}, err
	}
	maxLag := c.ProjectionMaxLag
	if maxLag == 0 {
		maxLag = -1 // no bound
	}
	return c, node.Config{
		Namespace: c.Namespace, Partitions: int32(c.Partitions), ReplicationFactor: int16(c.ReplicationFactor),
		DataDir: c.Data, InstanceID: c.InstanceID, HTTPAddr: c.HTTP, Tokens: tokens, Log: log, SnapshotEvery: c.SnapshotEvery, DedupeWindow: c.DedupeWindow,
		ReadWait: c.ReadWait, ReadWaitMax: c.ReadWaitMax, Tracing: c.Tracing,
		MetricsAccess: httpapi.MetricsAccess(c.Metrics), ProjectionMaxLag: maxLag, MaxConnections: c.MaxConnections,
		Types: builtinTypes, Projections: builtinProjections, Sinks: sinks,
	}, nil
}

// listFlag is a comma-separated list flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = splitList(s); return nil }

func splitList(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
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
	c, cfg, err := nf.resolve(stderr)
	if err != nil {
		return usageError(fs, stderr, "%v", err)
	}
	if cfg, err = withRegistry(ctx, c, cfg, stdout); err != nil {
		fmt.Fprintf(stderr, "strata dev: %v\n", err)
		return exitFailure
	}
	cluster, addr, err := devbroker.Start(devbroker.Options{DataDir: filepath.Join(c.Data, "kafka"), Port: *kafkaPort})
	if err != nil {
		fmt.Fprintf(stderr, "strata dev: %v\n", err)
		return exitFailure
	}
	defer cluster.Close()
	fmt.Fprintf(stdout, "strata dev: embedded Kafka broker at %s (data in %s)\n", addr, filepath.Join(c.Data, "kafka"))
	cfg.Opts = withClientLog(c, cfg, []kgo.Opt{kgo.SeedBrokers(addr)})
	cfg.TraceOutput = stdout
	cfg.OnReady = func(url string) {
		fmt.Fprintf(stdout, "strata dev: HTTP API at %s (Ctrl-C stops)\n", url)
		fmt.Fprintf(stdout, "strata dev: console at %s%s: open it in a browser\n", url, console.Path)
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
	nf.register(fs, config.Defaults().Data)
	nf.registerKafka(fs)
	pos, err := parse(fs, args, stderr, "--brokers HOST:PORT,... [flags]")
	if err != nil {
		return flagExit(err)
	}
	if len(pos) > 0 {
		return usageError(fs, stderr, "unexpected argument %q", pos[0])
	}
	c, cfg, err := nf.resolve(stderr)
	if err != nil {
		return usageError(fs, stderr, "%v", err)
	}
	if len(c.Brokers) == 0 {
		return usageError(fs, stderr, "--brokers is required (or brokers: in --config, or STRATA_BROKERS); for a local broker, use 'strata dev'")
	}
	opts, err := c.KafkaOpts()
	if err != nil {
		fmt.Fprintf(stderr, "strata serve: %v\n", err)
		return exitFailure
	}
	if cfg, err = withRegistry(ctx, c, cfg, stdout); err != nil {
		fmt.Fprintf(stderr, "strata serve: %v\n", err)
		return exitFailure
	}
	cfg.Opts = withClientLog(c, cfg, opts)
	cfg.TraceOutput = stdout
	cfg.OnReady = func(url string) {
		fmt.Fprintf(stdout, "strata serve: HTTP API at %s, brokers %s\n", url, strings.Join(c.Brokers, ","))
		fmt.Fprintf(stdout, "strata serve: console at %s%s\n", url, console.Path)
	}
	if cfg.Faults, err = crashFaults(os.Getenv("STRATA_CRASH_AT")); err != nil {
		return usageError(fs, stderr, "%v", err)
	}
	if err := node.Run(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "strata serve: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// withClientLog adds franz-go's own logs to opts at log.kafka's level (off
// by default), into the node's log.
func withClientLog(c config.Config, cfg node.Config, opts []kgo.Opt) []kgo.Opt {
	lv, _ := kafka.ParseClientLogLevel(c.Log.Kafka) // Validate checked it
	if lv == kgo.LogLevelNone {
		return opts
	}
	return append(opts, kgo.WithLogger(kafka.ClientLogger(cfg.Log, lv)))
}

// crashFaults reads STRATA_CRASH_AT=POINT:N, a testing aid: the process
// kills itself with SIGKILL the Nth time the write path reaches POINT
// (before-flush, before-commit, after-commit), so that tests crash it at
// exactly the dangerous points. Never set it in production.
func crashFaults(spec string) (processor.Faults, error) {
	var f processor.Faults
	if spec == "" {
		return f, nil
	}
	point, nth, ok := strings.Cut(spec, ":")
	n, err := strconv.Atoi(nth)
	if !ok || err != nil || n < 1 {
		return f, fmt.Errorf("STRATA_CRASH_AT=%q: want POINT:N, like after-commit:3", spec)
	}
	var calls atomic.Int64
	hook := func(int) error {
		if calls.Add(1) == int64(n) {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // SIGKILL is not handled; wait for it
		}
		return nil
	}
	switch point {
	case "before-flush":
		f.BeforeFlush = hook
	case "before-commit":
		f.BeforeCommit = hook
	case "after-commit":
		f.AfterCommit = hook
	default:
		return f, fmt.Errorf("STRATA_CRASH_AT=%q: point must be before-flush, before-commit or after-commit", spec)
	}
	return f, nil
}

// viewSinks builds the node's sinks from the config's sinks section: for
// each view, the PostgreSQL tables, the search index and the cache it is
// configured with, in that order. Secrets are read once, here, and never
// logged.
func viewSinks(c config.Sinks) (func(projections.SinkView) ([]projections.Sink, error), error) {
	if len(c.Postgres.Views) == 0 && len(c.Search.Views) == 0 && len(c.Cache.Views) == 0 {
		return nil, nil
	}
	var pgURL string
	if len(c.Postgres.Views) > 0 {
		var err error
		if pgURL, err = c.Postgres.ConnURL(); err != nil {
			return nil, err
		}
	}
	var sc *search.Client
	if len(c.Search.Views) > 0 {
		pw, err := c.Search.Password()
		if err != nil {
			return nil, err
		}
		if sc, err = search.NewClient(search.Config{URLs: c.Search.URLs, Username: c.Search.Username, Password: pw, CAFile: c.Search.CAFile, Timeout: c.Search.Timeout}); err != nil {
			return nil, err
		}
	}
	var rdb *redis.Client // one client (and pool) for every cached view
	if len(c.Cache.Views) > 0 {
		pw, err := c.Cache.Password()
		if err != nil {
			return nil, err
		}
		if rdb, err = cache.NewClient(cache.Config{URL: c.Cache.URL, Password: pw, CAFile: c.Cache.CAFile, Timeout: c.Cache.Timeout}); err != nil {
			return nil, err
		}
	}
	return func(v projections.SinkView) ([]projections.Sink, error) {
		var out []projections.Sink
		if slices.Contains(c.Postgres.Views, v.Name) {
			// One per view: a PostgreSQL sink keeps the view it opened.
			s, err := postgres.New(postgres.Config{URL: pgURL, Schema: c.Postgres.Schema})
			if err != nil {
				return nil, fmt.Errorf("sinks.postgres: %w", err)
			}
			out = append(out, s)
		}
		if slices.Contains(c.Search.Views, v.Name) {
			s, err := search.New(sc, v)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		// The cache last: a row reaches it once the other stores have it,
		// so a read that misses it and fills it from the index finds the
		// row's newest version there.
		if slices.Contains(c.Cache.Views, v.Name) {
			out = append(out, cache.New(rdb, v, c.Cache.Prefix(v.Name), c.Cache.TTL))
		}
		return out, nil
	}, nil
}
