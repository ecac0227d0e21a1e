// Package node runs one Strata instance: the command processors, the
// projections, the result dispatcher and the HTTP API, over one data
// directory and one Kafka cluster.
package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/internal/codec"
	"github.com/strata-es/strata/internal/console"
	"github.com/strata-es/strata/internal/httpapi"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/metrics"
	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/internal/processor"
	"github.com/strata-es/strata/internal/sinks/cache"
	"github.com/strata-es/strata/internal/sinks/search"
	"github.com/strata-es/strata/internal/store"
	"github.com/strata-es/strata/internal/tracing"
	"github.com/strata-es/strata/projections"
	"github.com/strata-es/strata/schemas"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/net/netutil"
	"golang.org/x/sync/errgroup"
)

// Config configures a node.
type Config struct {
	// Opts connect to Kafka: at least kgo.SeedBrokers; TLS and SASL too.
	Opts []kgo.Opt
	// Namespace prefixes every topic. Default "strata".
	Namespace string
	// Partitions of the commands and events topics created. Default 12:
	// enough for 12 instances to share the write path, few enough for a
	// small cluster. Fixed once the topics exist.
	Partitions int32
	// ReplicationFactor of created topics; -1 (default) is the broker's.
	ReplicationFactor int16
	// DataDir holds the state store and the instance ID.
	DataDir string
	// InstanceID, when set, is this process's identity in the processors'
	// groups and transactional IDs instead of the one kept in DataDir. An
	// orchestrator's stable name (a StatefulSet's pod name) lets a process
	// that replaces a dead one on an empty disk fence the dead one's
	// unfinished transactions and take its partitions back at once; with
	// a new identity both wait (the transaction timeout, the session
	// timeout). It must be unique among the running processes.
	InstanceID string
	// HTTPAddr is where the API listens. Default 127.0.0.1:8080: only
	// this machine can reach it, the safe default for an API that has no
	// authentication unless Tokens are given.
	HTTPAddr string
	// Tokens, when they hold any, are the bearer tokens the API requires
	// on every route but /healthz and /readyz (see httpapi.Tokens).
	// Default nil: no authentication.
	Tokens *httpapi.Tokens
	// ReadHeaderTimeout is how long a client may take to send a request's
	// headers. Default 10s: far more than any real client needs, and a
	// slow one (slowloris) cannot hold a connection for longer.
	ReadHeaderTimeout time.Duration
	// MaxConnections bounds the HTTP connections open at once: a burst of
	// clients waits in the listen backlog instead of taking a goroutine
	// and buffers each. 0: no bound.
	MaxConnections int
	Log            *slog.Logger

	Types       []aggregates.Type
	Projections []projections.Projection
	Catalog     *schemas.Catalog
	// Sinks returns the sinks that keep copies of a view (cmd/strata
	// builds them from the config's sinks section); nil or none: Pebble
	// only. A view with a search or cache sink (*search.Sink,
	// *cache.Sink) also serves reads from it (see httpapi.View). The node
	// closes them when it stops.
	Sinks func(v projections.SinkView) ([]projections.Sink, error)

	// OnReady, if set, is called once the API serves, with its URL.
	OnReady func(url string)
	// SnapshotEvery is the processor's snapshot interval, in events of an
	// aggregate (see processor.Config). Default 100.
	SnapshotEvery int
	// ReadWait and ReadWaitMax: how long a read given a position waits
	// for it by default, and at most (?wait=). Defaults 5s and 30s.
	ReadWait, ReadWaitMax time.Duration
	// DedupeWindow is how long command results are kept for resends of
	// the same command ID (see processor.Config). Default 24h.
	DedupeWindow time.Duration
	// CommandTimeout bounds how long an HTTP command waits for its
	// result before answering 504. Default 10s.
	CommandTimeout time.Duration

	// Tracing says whether and where spans are exported (see
	// tracing.Config). Default: none. Whatever it says, a trace context
	// that arrives with a command is passed on to its events, results and
	// published view rows.
	Tracing tracing.Config
	// TraceOutput receives the stdout exporter's spans. Default os.Stdout.
	TraceOutput io.Writer
	// TracerProvider, when set, receives the spans instead of one built
	// from Tracing (tests record them with it); the caller shuts it down.
	TracerProvider trace.TracerProvider
	// Metrics are the node's Prometheus metrics, served at /metrics.
	// Default: new ones (metrics.New), in a registry of the node's own.
	Metrics *metrics.Metrics
	// MetricsAccess says who may read /metrics (see httpapi.MetricsAccess).
	// Default httpapi.MetricsToken: a token, when tokens are configured.
	MetricsAccess httpapi.MetricsAccess
	// ProjectionMaxLag is how many offsets a projection may be behind its
	// topics with /readyz still ready. Default 100,000: about a second of
	// catch-up for a view like accounts, so a node that restarts after a
	// short stop serves at once, and one far behind (a new node, a long
	// outage) waits until its views are nearly current. Under a steady
	// load a view is a few batches behind; a lower bound makes a busy
	// node drop out of a load balancer more often. Negative: no bound.
	ProjectionMaxLag int64
	// BrokerCheckEvery is how often the brokers are asked for their
	// metadata for /readyz and strata_broker_reachable. Default 5s.
	BrokerCheckEvery time.Duration

	// Faults are the write path's fault-injection hooks, for tests.
	Faults processor.Faults
}

func (c *Config) setDefaults() {
	if c.Namespace == "" {
		c.Namespace = "strata"
	}
	if c.Partitions == 0 {
		c.Partitions = 12
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8080"
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Catalog == nil {
		c.Catalog = schemas.Default()
	}
	if c.TraceOutput == nil {
		c.TraceOutput = os.Stdout
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New()
	}
	if c.MetricsAccess == "" {
		c.MetricsAccess = httpapi.MetricsToken
	}
	if c.ProjectionMaxLag == 0 {
		c.ProjectionMaxLag = 100_000
	}
	if c.BrokerCheckEvery <= 0 {
		c.BrokerCheckEvery = 5 * time.Second
	}
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var problems []error
	if err := aggregates.CheckName(c.Namespace); err != nil {
		problems = append(problems, fmt.Errorf("namespace %q: %w", c.Namespace, err))
	}
	problems = append(problems, c.Tracing.Problems()...)
	if c.Partitions < 1 || c.Partitions > 10000 {
		problems = append(problems, fmt.Errorf("partitions %d: want 1 to 10000", c.Partitions))
	}
	if c.DataDir == "" {
		problems = append(problems, errors.New("data directory: required"))
	}
	if c.InstanceID != "" {
		if err := kafka.CheckInstanceID(c.InstanceID); err != nil {
			problems = append(problems, fmt.Errorf("instance ID %q: %w", c.InstanceID, err))
		}
	}
	if len(c.Types) == 0 {
		problems = append(problems, errors.New("no aggregate types"))
	}
	if _, err := httpapi.ParseMetricsAccess(string(c.MetricsAccess)); err != nil {
		problems = append(problems, err)
	}
	for _, t := range c.Types {
		if err := c.Catalog.Bind(t); err != nil {
			problems = append(problems, err)
		}
	}
	known := map[string]bool{}
	for _, t := range c.Types {
		known[t.Name()] = true
	}
	for _, p := range c.Projections {
		if err := aggregates.CheckName(p.Name); err != nil {
			problems = append(problems, fmt.Errorf("projection %q: %w", p.Name, err))
		}
		for _, a := range p.Aggregates {
			if !known[a] {
				problems = append(problems, fmt.Errorf("projection %s reads aggregate %q, which is not registered", p.Name, a))
			}
		}
		if p.Publish {
			if err := projections.CheckPublish(c.Catalog, p); err != nil {
				problems = append(problems, err)
			}
		}
	}
	return errors.Join(problems...)
}

// Run runs the node until ctx ends or a part fails that the node cannot
// run without (a command processor, the API). A failed projection is
// reported by /readyz and its view stops advancing; the rest goes on.
func Run(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log := cfg.Log
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	instanceID := cfg.InstanceID
	if instanceID == "" {
		id, err := loadInstanceID(cfg.DataDir)
		if err != nil {
			return err
		}
		instanceID = id
	}
	db, err := store.Open(filepath.Join(cfg.DataDir, "state"), store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	tp := cfg.TracerProvider
	if tp == nil && cfg.Tracing.Enabled() {
		sdk, err := tracing.NewProvider(ctx, cfg.Tracing, instanceID, cfg.TraceOutput)
		if err != nil {
			return err
		}
		// Flush the spans still buffered, whatever stops the node.
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := sdk.Shutdown(sctx); err != nil {
				log.Warn("tracing: the last spans could not be exported", "err", err)
			}
		}()
		tp = sdk
		log.Info("tracing on", "exporter", cfg.Tracing.Exporter, "sample_ratio", cfg.Tracing.SampleRatio)
	}
	tracer := tracing.New(tp)

	names := kafka.Names{Namespace: cfg.Namespace}
	admCl, err := kgo.NewClient(cfg.Opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer admCl.Close()
	var specs []kafka.TopicSpec
	codecs := map[string]codec.Codec{}
	for _, t := range cfg.Types {
		specs = append(specs, names.AggregateTopics(t.Name(), cfg.Partitions)...)
		codecs[t.Name()] = codec.Codec{Type: t, Catalog: cfg.Catalog}
	}
	for _, p := range cfg.Projections {
		if p.Publish {
			specs = append(specs, names.ViewTopics(p.Name, cfg.Partitions, projections.ElectionTopic(names.View(p.Name)))...)
		}
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	ids, err := kafka.EnsureTopics(tctx, kadm.NewClient(admCl), cfg.ReplicationFactor, specs)
	cancel()
	if err == nil {
		err = checkTopicIDs(db, ids, names, cfg.Types, cfg.DataDir)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("topics: %w", err)
	}

	sender, err := processor.NewSender(ctx, cfg.Opts, names, cfg.Partitions, codecs)
	if err != nil {
		return err
	}
	defer sender.Close()

	applied := position.NewTracker()
	procs := map[string]*processor.Processor{}
	for _, t := range cfg.Types {
		procs[t.Name()] = processor.New(processor.Config{
			Codec: codecs[t.Name()], DB: db, Names: names, Partitions: cfg.Partitions,
			InstanceID: instanceID, Opts: cfg.Opts, Log: log, Applied: applied, Faults: cfg.Faults, SnapshotEvery: cfg.SnapshotEvery, DedupeWindow: cfg.DedupeWindow,
			Tracer:  tracer,
			Metrics: cfg.Metrics,
		})
	}
	runners := map[string]*projections.Live{}
	views := map[string]httpapi.View{}
	for _, p := range cfg.Projections {
		view := p.Name
		var sinks []projections.Sink
		if cfg.Sinks != nil {
			sv := projections.SinkView{Name: p.Name, Namespace: cfg.Namespace, Indexes: p.Indexes}
			if sub, ok := cfg.Catalog.Subject("views/" + p.Name); ok {
				sv.Schema = sub.Latest().Schema
			}
			if sinks, err = cfg.Sinks(sv); err != nil {
				return fmt.Errorf("view %s: sinks: %w", p.Name, err)
			}
			for _, sk := range sinks {
				defer sk.Close()
			}
		}
		r, err := projections.NewLive(projections.RunnerConfig{
			Projection: p, Codecs: codecs, DB: db, Names: names, Partitions: cfg.Partitions, Opts: cfg.Opts, Log: log, Catalog: cfg.Catalog,
			Tracer: tracer,
			Sinks:  sinks,
			OnSinkWrite: func(sink string, took time.Duration, _ error) {
				cfg.Metrics.SinkWrite(view, sink, took)
			},
		})
		if err != nil {
			return err
		}
		runners[p.Name] = r
		var indexes []string
		for _, ix := range p.Indexes {
			indexes = append(indexes, ix.Name)
		}
		hv := httpapi.View{Name: p.Name, Live: r, Indexes: indexes, Aggregates: p.Aggregates}
		for _, sk := range sinks {
			switch sk := sk.(type) {
			case *search.Sink:
				hv.Search = sk
			case *cache.Sink:
				hv.Cache = sk
			}
		}
		views[p.Name] = hv
	}

	broker := &brokerCheck{cl: admCl, every: cfg.BrokerCheckEvery, log: log}
	ready := &readiness{broker: broker, procs: procs, runners: runners, maxLag: cfg.ProjectionMaxLag}
	for _, p := range cfg.Projections {
		ready.projections = append(ready.projections, p.Name)
	}
	watchState(cfg.Metrics, cfg.Types, procs, cfg.Projections, runners, broker)

	var baseCtx context.Context // set below, before the server serves
	ln, err := listen(cfg)
	if err != nil {
		return err
	}
	api := httpapi.Handler(httpapi.Config{
		Sender: sender, Codecs: codecs, DB: db, Applied: applied, Views: views, Log: log, CommandTimeout: cfg.CommandTimeout,
		Tokens:      cfg.Tokens,
		Tracer:      tracer,
		DLQ:         deadLetters(cfg.Opts, names),
		BaseContext: func() context.Context { return baseCtx },
		ReadWait:    cfg.ReadWait, ReadWaitMax: cfg.ReadWaitMax,
		Metrics: cfg.Metrics, MetricsAccess: cfg.MetricsAccess,
		Ready: ready.check,
		Status: func() any {
			st := NodeStatus{Instance: instanceID, Namespace: cfg.Namespace}
			for _, t := range cfg.Types {
				st.Processors = append(st.Processors, procs[t.Name()].Status())
			}
			for _, p := range cfg.Projections {
				st.Projections = append(st.Projections, runners[p.Name].Status())
			}
			return st
		},
	})
	srv := newServer(cfg, withConsole(api))

	g, gctx := errgroup.WithContext(ctx)
	baseCtx = gctx
	parts := newStopping()
	g.Go(parts.track("command sender", func() error { return sender.Run(gctx) }))
	g.Go(parts.track("broker check", func() error { broker.Run(gctx); return nil }))
	for _, t := range cfg.Types {
		p := procs[t.Name()]
		g.Go(parts.track("processor "+t.Name(), func() error { return p.Run(gctx) }))
	}
	var wg sync.WaitGroup
	for _, pr := range cfg.Projections {
		name, r := pr.Name, runners[pr.Name]
		wg.Add(1)
		go parts.track("projection "+name, func() error {
			defer wg.Done()
			if err := r.Run(gctx); err != nil {
				log.Error("projection stopped; its view no longer advances (see /readyz)", "projection", name, "err", err)
			}
			return nil
		})()
	}
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("HTTP server: %w", err)
		}
		return nil
	})
	g.Go(parts.track("HTTP requests in flight", func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}))
	stopped := make(chan struct{})
	defer close(stopped)
	go parts.report(gctx, stopped, log, 5*time.Second)
	url := "http://" + ln.Addr().String()
	log.Info("strata serving", "http", url, "console", url+console.Path, "instance", instanceID, "data", cfg.DataDir, "auth", authSummary(cfg.Tokens), "metrics", metricsSummary(cfg))
	if cfg.Tokens.Len() == 0 && !ln.Addr().(*net.TCPAddr).IP.IsLoopback() {
		log.Warn("the HTTP API listens beyond this machine without authentication: anyone who can reach it can send commands; give it tokens (--auth-token-file)", "http", url)
	}
	if cfg.OnReady != nil {
		cfg.OnReady(url)
	}
	err = g.Wait()
	wg.Wait()
	if err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// listen opens the HTTP API's listener, accepting at most MaxConnections
// connections at once.
func listen(cfg Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("HTTP listen on %s: %w (pass --http with a free address)", cfg.HTTPAddr, err)
	}
	if cfg.MaxConnections > 0 {
		ln = netutil.LimitListener(ln, cfg.MaxConnections)
	}
	return ln, nil
}

// withConsole serves the web console beside the API: its files under
// /console/ and a redirect to it from /, without authentication (they hold
// no data; the console's calls to the API carry the user's token), and
// everything else through the API.
func withConsole(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(console.Path, console.Handler())
	mux.Handle("GET /{$}", console.Redirect())
	mux.Handle("/", api)
	return mux
}

// deadLetters reads an aggregate type's dead-letter topic for GET
// /v1/dlq: each request reads Kafka with clients of its own
// (kafka.Tail), at most two requests at a time, so that a person
// reloading the page cannot pile up clients.
func deadLetters(opts []kgo.Opt, names kafka.Names) func(context.Context, string, int) ([]kafka.TailRecord, string, bool, error) {
	sem := make(chan struct{}, 2)
	return func(ctx context.Context, agg string, n int) ([]kafka.TailRecord, string, bool, error) {
		topic := names.DLQ(agg)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil, topic, false, fmt.Errorf("too many dead-letter reads at once: %w", ctx.Err())
		}
		defer func() { <-sem }()
		recs, complete, err := kafka.Tail(ctx, opts, topic, n, kafka.TailOptions{})
		return recs, topic, complete, err
	}
}

// newServer returns the API's server, with limits that keep slow or
// hostile clients from holding connections: the headers must arrive
// within ReadHeaderTimeout and the whole request within ReadTimeout (a
// body is at most httpapi.MaxBodyBytes); an idle kept-alive connection is
// closed after IdleTimeout. The handler bounds the writing of each answer
// (httpapi.Config.WriteTimeout); there is no server WriteTimeout because
// it would count the waits a handler is allowed before answering.
func newServer(cfg Config, h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       max(30*time.Second, cfg.ReadHeaderTimeout),
		IdleTimeout:       2 * time.Minute,
		// Ample for a bearer token and the usual headers; the default
		// is 1 MiB.
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(cfg.Log.Handler(), slog.LevelWarn),
	}
}

// authSummary says whether the API requires tokens, and how many of each
// role, never what they are.
func authSummary(t *httpapi.Tokens) string {
	if t.Len() == 0 {
		return "off (no tokens: every route is open to whoever can reach the address)"
	}
	return fmt.Sprintf("bearer tokens (%d read-write, %d read-only)", t.Count(httpapi.ReadWrite), t.Count(httpapi.ReadOnly))
}

// metricsSummary says where the metrics are served and who may read them.
func metricsSummary(cfg Config) string {
	switch {
	case cfg.MetricsAccess == httpapi.MetricsOff:
		return "off"
	case cfg.MetricsAccess == httpapi.MetricsOpen || cfg.Tokens.Len() == 0:
		return "GET /metrics, open"
	}
	return "GET /metrics, with a token (read-only suffices)"
}

// watchState gives the metrics what they read at each scrape: the
// processors' partitions, the projections' progress, the broker check.
func watchState(m *metrics.Metrics, types []aggregates.Type, procs map[string]*processor.Processor, views []projections.Projection, runners map[string]*projections.Live, broker *brokerCheck) {
	m.WatchBroker(broker.reachable)
	m.WatchProcessors(func() []metrics.ProcessorState {
		out := make([]metrics.ProcessorState, 0, len(types))
		for _, t := range types {
			st := procs[t.Name()].Status()
			out = append(out, metrics.ProcessorState{Aggregate: st.Aggregate, Owned: len(st.Owned), CatchingUp: len(st.CatchingUp), Failed: len(st.Failed)})
		}
		return out
	})
	m.WatchProjections(func() []metrics.ProjectionState {
		out := make([]metrics.ProjectionState, 0, len(views))
		for _, v := range views {
			st := runners[v.Name].Status()
			ps := metrics.ProjectionState{
				Name: v.Name, Running: strings.HasPrefix(st.State, "running"), Applied: st.Applied,
				FailedPartitions: len(st.Failed), ParkedAggregates: len(st.Parked),
			}
			for _, p := range st.Parked {
				ps.ParkedEvents += p.Events
			}
			for _, s := range st.Sinks {
				ps.Sinks = append(ps.Sinks, metrics.SinkState{Name: s.Name, Up: s.Up, Errors: s.Errors})
			}
			for _, p := range st.Partitions {
				ps.Partitions = append(ps.Partitions, metrics.ProjectionPartition{Topic: p.Topic, Partition: p.Partition, Next: p.Applied, Lag: p.Lag})
			}
			out = append(out, ps)
		}
		return out
	})
}

// NodeStatus is the answer of GET /v1/status.
type NodeStatus struct {
	Instance    string               `json:"instance"`
	Namespace   string               `json:"namespace"`
	Processors  []processor.Status   `json:"processors"`
	Projections []projections.Status `json:"projections"`
}

// loadInstanceID returns the data directory's instance ID, creating it on
// first use. It names the transactional IDs, so a restarted process fences
// its own unfinished transactions.
func loadInstanceID(dir string) (string, error) {
	path := filepath.Join(dir, "instance-id")
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if kafka.CheckInstanceID(id) != nil {
			return "", fmt.Errorf("%s: %q is not an instance ID; delete the file to make a new one", path, id)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("instance ID: %w", err)
	}
	var raw [8]byte
	_, _ = rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("instance ID: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("instance ID: %w", err)
	}
	return id, nil
}
