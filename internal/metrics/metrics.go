// Package metrics holds Strata's Prometheus collectors: what the write path,
// the projections and the HTTP API count and time, and what /metrics serves.
//
// Every node has its own Metrics, registered in its own prometheus.Registry
// (never the global default, so that tests can run several nodes in one
// process), with the Go runtime and process collectors beside Strata's.
//
// Label values are bounded: aggregate types, command and event types the
// code declares, projections, topics and partitions, routes of the API.
// Nothing that comes from outside (an aggregate ID, a command type a client
// made up, an HTTP method) becomes a label value as it is.
//
// # Usage
//
//	m := metrics.New()
//	agg := m.Aggregate(metrics.AggregateNames{...}) // once per aggregate type
//	typ := agg.CommandType("Deposit")               // once per command, a map lookup
//	typ.Done(metrics.Accepted, took)                // after the commit
//	http.Handle("GET /metrics", m.Handler())
//
// A Metrics and everything it returns are safe for concurrent use.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are one node's collectors and the registry that serves them.
type Metrics struct {
	reg *prometheus.Registry

	commands        *prometheus.CounterVec
	commandDuration *prometheus.HistogramVec
	stageDuration   *prometheus.HistogramVec
	eventsWritten   *prometheus.CounterVec
	txnAborts       *prometheus.CounterVec
	consumerLag     *prometheus.GaugeVec
	snapshotWrites  *prometheus.CounterVec
	restoreDuration *prometheus.HistogramVec
	dlqRecords      *prometheus.CounterVec
	redeliveries    *prometheus.CounterVec
	httpRequests    *prometheus.CounterVec
	httpDuration    *prometheus.HistogramVec
	sinkDuration    *prometheus.HistogramVec
	// strata lists Strata's own collectors (the above, and the state read
	// at a scrape), as registered.
	strata []prometheus.Collector

	mu          sync.Mutex
	projections func() []ProjectionState
	processors  func() []ProcessorState
	broker      func() bool
}

// New returns a node's metrics, registered in a new registry with the Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_commands_total",
			Help: "Commands decided, by aggregate type, command type and outcome (accepted, rejected, conflict, invalid; duplicate: a resent command ID answered with its first result). Counted when their transaction commits. A type the aggregate does not declare counts as \"unknown\".",
		}, []string{"aggregate", "type", "outcome"}),
		commandDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_command_duration_seconds",
			Help:    "End to end time of a command: from its record's timestamp on the commands topic (set by the producer) to the commit of the transaction holding its result.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1ms to 33s
		}, []string{"aggregate", "outcome"}),
		stageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "strata_command_stage_duration_seconds",
			Help: "Time of one stage of the write path, per batch of commands (one transaction): decide (decode, load, Decide, encode every command of the batch), " +
				"produce (wait for the batch's events to be acknowledged), commit (produce results and snapshots, commit the transaction), " +
				"pebble (write state, event index, results and checkpoints to the local store).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100µs to 3.3s
		}, []string{"aggregate", "stage"}),
		eventsWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_events_written_total",
			Help: "Events appended to the events topic by this node's command processor, by aggregate type and event type, counted when their transaction commits.",
		}, []string{"aggregate", "type"}),
		txnAborts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_transaction_aborts_total",
			Help: "Transactions of the write path that did not commit, by reason: rebalance (partitions moved; the new owner retries the batch), produce (a record could not be produced; retried), " +
				"flush or end (the transactional session failed; a new one retries), rewind (a partition stopped at an unreadable event; the batch is polled again without it), " +
				"error (the processor stopped: the local store failed), injected (a test's fault hook), " +
				"split (the Kafka client moved to a new producer epoch mid-transaction, which aborted the records before; retried), " +
				"unconfirmed (the Kafka client reported the commit not done, but the group's offsets already cover the batch, or could not be read: the broker may have committed it, or a rebalance's new owner got past it; a new session catches up from the topics).",
		}, []string{"aggregate", "reason"}),
		consumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_consumer_lag_records",
			Help: "Records of a partition this node's consumer group member has not consumed yet: the partition's last stable offset minus the next offset to consume, as of the last fetch of the partition. Only partitions assigned to this node.",
		}, []string{"group", "topic", "partition"}),
		snapshotWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_snapshot_writes_total",
			Help: "Aggregate snapshots written to the snapshots topic (in the transaction of the command that made them due).",
		}, []string{"aggregate"}),
		restoreDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "strata_restore_duration_seconds",
			Help: "Time to bring the state of newly assigned partitions up to date before they take commands: the snapshots topic when the data directory has no state for them, then the events after the checkpoint. One observation per catch-up of the partitions assigned together.",
			// 1ms to 9 minutes.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 20),
		}, []string{"aggregate"}),
		dlqRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_dlq_records_total",
			Help: "Command records sent to the dead-letter topic, by reason: undecodable (the value is not a command of this aggregate), bad_key (not a valid aggregate ID), bad_command_id, bad_expected_version, too_large (its events or its forwarded copy exceed a record's limit).",
		}, []string{"aggregate", "reason"}),
		redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_command_redeliveries_total",
			Help: "Command records consumed again after a committed transaction had decided them (the consumer group's committed offset was behind what Strata's state store or results topic say was decided), skipped without a second result. Should stay 0; each one is logged.",
		}, []string{"aggregate"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_http_requests_total",
			Help: "HTTP requests answered, by route (the API's pattern, \"unmatched\" for none), method (\"other\" for unusual ones) and status code.",
		}, []string{"route", "method", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_http_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its answer, by route and method; it includes the waits a request asks for (a command's result, ?position=).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 17), // 0.5ms to 33s
		}, []string{"route", "method"}),
		sinkDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_sink_write_duration_seconds",
			Help:    "Time of one attempt at writing a batch of a view's changed rows (or opening, or a backfill chunk) to an external sink, failed attempts included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 17), // 0.5ms to 33s
		}, []string{"view", "sink"}),
	}
	m.strata = []prometheus.Collector{
		m.commands, m.commandDuration, m.stageDuration, m.eventsWritten, m.txnAborts, m.consumerLag,
		m.snapshotWrites, m.restoreDuration, m.dlqRecords, m.redeliveries, m.httpRequests, m.httpDuration, m.sinkDuration,
		stateCollector{m},
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(m.strata...)
	return m
}

// Registry is the registry the metrics are in; register a node's own
// collectors there.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats. A
// collector that fails does not fail the scrape: the others are served and
// the error is counted in promhttp_metric_handler_errors_total.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError})
}

// Outcome is what became of a command.
type Outcome uint8

// Outcomes, the values of the outcome label.
const (
	Accepted Outcome = iota
	Rejected
	Conflict
	Invalid
	Duplicate
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"accepted", "rejected", "conflict", "invalid", "duplicate"}

func (o Outcome) String() string { return outcomeNames[o] }

// Stage is a stage of the write path.
type Stage uint8

// Stages, the values of the stage label (see strata_command_stage_duration_seconds).
const (
	StageDecide Stage = iota
	StageProduce
	StageCommit
	StagePebble
	numStages
)

var stageNames = [numStages]string{"decide", "produce", "commit", "pebble"}

// AbortReason is why a transaction did not commit.
type AbortReason uint8

// Abort reasons, the values of the reason label of strata_transaction_aborts_total.
const (
	AbortRebalance AbortReason = iota
	AbortProduce
	AbortFlush
	AbortEnd
	AbortRewind
	AbortError
	AbortInjected
	// AbortSplit: the Kafka client moved to a new producer epoch in the
	// middle of the transaction, aborting what it had written before.
	AbortSplit
	// AbortUnconfirmed: the Kafka client reported a commit not done, but
	// the group's offsets cover the batch (or could not be read); the
	// session was started anew.
	AbortUnconfirmed
	numAbortReasons
)

var abortNames = [numAbortReasons]string{"rebalance", "produce", "flush", "end", "rewind", "error", "injected", "split", "unconfirmed"}

// DLQReason is why a command record went to the dead-letter topic.
type DLQReason uint8

// DLQ reasons, the values of the reason label of strata_dlq_records_total.
const (
	DLQUndecodable DLQReason = iota
	DLQBadKey
	DLQBadCommandID
	DLQBadExpectedVersion
	DLQTooLarge
	numDLQReasons
)

var dlqNames = [numDLQReasons]string{"undecodable", "bad_key", "bad_command_id", "bad_expected_version", "too_large"}

// AggregateNames name what the write path of one aggregate type counts.
type AggregateNames struct {
	Aggregate string
	// CommandTypes and EventTypes are the types the aggregate declares:
	// their label children are made up front.
	CommandTypes, EventTypes []string
	// Group and Topic are the processor's consumer group and commands
	// topic, for strata_consumer_lag_records.
	Group, Topic string
}

// Aggregate is the write path's metrics of one aggregate type, with every
// label child resolved up front so that the hot path only adds to atomics.
type Aggregate struct {
	m        *Metrics
	names    AggregateNames
	types    map[string]*CommandType
	unknown  *CommandType
	events   map[string]prometheus.Counter
	stages   [numStages]prometheus.Observer
	aborts   [numAbortReasons]prometheus.Counter
	dlq      [numDLQReasons]prometheus.Counter
	snapshot prometheus.Counter
	restore  prometheus.Observer
	redeliv  prometheus.Counter

	lagMu sync.Mutex
	lag   map[int32]prometheus.Gauge
}

// CommandType counts the commands of one type.
type CommandType struct {
	outcomes [numOutcomes]prometheus.Counter
	duration *[numOutcomes]prometheus.Observer // shared by the aggregate's types
}

// Aggregate returns the metrics of one aggregate type's write path. Call it
// once per processor.
func (m *Metrics) Aggregate(n AggregateNames) *Aggregate {
	a := &Aggregate{m: m, names: n, types: map[string]*CommandType{}, events: map[string]prometheus.Counter{}, lag: map[int32]prometheus.Gauge{}}
	duration := new([numOutcomes]prometheus.Observer)
	for o := range numOutcomes {
		duration[o] = m.commandDuration.WithLabelValues(n.Aggregate, outcomeNames[o])
	}
	newType := func(name string) *CommandType {
		t := &CommandType{duration: duration}
		for o := range numOutcomes {
			t.outcomes[o] = m.commands.WithLabelValues(n.Aggregate, name, outcomeNames[o])
		}
		return t
	}
	for _, name := range n.CommandTypes {
		a.types[name] = newType(name)
	}
	a.unknown = newType("unknown")
	for _, name := range n.EventTypes {
		a.events[name] = m.eventsWritten.WithLabelValues(n.Aggregate, name)
	}
	for s := range numStages {
		a.stages[s] = m.stageDuration.WithLabelValues(n.Aggregate, stageNames[s])
	}
	for r := range numAbortReasons {
		a.aborts[r] = m.txnAborts.WithLabelValues(n.Aggregate, abortNames[r])
	}
	for r := range numDLQReasons {
		a.dlq[r] = m.dlqRecords.WithLabelValues(n.Aggregate, dlqNames[r])
	}
	a.snapshot = m.snapshotWrites.WithLabelValues(n.Aggregate)
	a.restore = m.restoreDuration.WithLabelValues(n.Aggregate)
	a.redeliv = m.redeliveries.WithLabelValues(n.Aggregate)
	return a
}

// CommandType returns the counters of a command type; a type the aggregate
// does not declare (or "") gets the "unknown" ones, so a client cannot make
// up label values.
func (a *Aggregate) CommandType(name string) *CommandType {
	if t, ok := a.types[name]; ok {
		return t
	}
	return a.unknown
}

// Done counts a command with its outcome and end-to-end time.
func (t *CommandType) Done(o Outcome, took time.Duration) {
	t.outcomes[o].Inc()
	t.duration[o].Observe(max(took, 0).Seconds())
}

// Stage records how long a stage of one batch took.
func (a *Aggregate) Stage(s Stage, took time.Duration) { a.stages[s].Observe(took.Seconds()) }

// Aborted counts a transaction that did not commit.
func (a *Aggregate) Aborted(r AbortReason) { a.aborts[r].Inc() }

// DeadLettered counts a command record sent to the dead-letter topic.
func (a *Aggregate) DeadLettered(r DLQReason) { a.dlq[r].Inc() }

// Redelivered counts command records skipped as already decided.
func (a *Aggregate) Redelivered(n int) {
	if n > 0 {
		a.redeliv.Add(float64(n))
	}
}

// EventWritten counts an event appended to the events topic.
func (a *Aggregate) EventWritten(eventType string) {
	c, ok := a.events[eventType]
	if !ok {
		// Only the processor writes events, of the types its decider
		// returns; a type missing from EventTypes is a code bug, still
		// bounded by the code.
		c = a.m.eventsWritten.WithLabelValues(a.names.Aggregate, eventType)
	}
	c.Inc()
}

// SnapshotsWritten counts snapshots written to the snapshots topic.
func (a *Aggregate) SnapshotsWritten(n int) {
	if n > 0 {
		a.snapshot.Add(float64(n))
	}
}

// Restored records the time a catch-up of newly assigned partitions took.
func (a *Aggregate) Restored(took time.Duration) { a.restore.Observe(took.Seconds()) }

// SetLag sets the consumer lag of an assigned commands partition. The
// caller serializes it with ForgetLag, so a partition revoked meanwhile
// does not come back.
func (a *Aggregate) SetLag(partition int32, records int64) {
	a.lagMu.Lock()
	g, ok := a.lag[partition]
	if !ok {
		g = a.m.consumerLag.WithLabelValues(a.names.Group, a.names.Topic, strconv.Itoa(int(partition)))
		a.lag[partition] = g
	}
	a.lagMu.Unlock()
	g.Set(float64(max(records, 0)))
}

// ForgetLag removes the lag of a partition this node no longer consumes, so
// that it does not stay at its last value here while another node owns it.
func (a *Aggregate) ForgetLag(partition int32) {
	a.lagMu.Lock()
	defer a.lagMu.Unlock()
	if _, ok := a.lag[partition]; ok {
		delete(a.lag, partition)
		a.m.consumerLag.DeleteLabelValues(a.names.Group, a.names.Topic, strconv.Itoa(int(partition)))
	}
}

// SinkWrite records one attempt at a view's sink (see
// projections.RunnerConfig.OnSinkWrite); the failures are counted from the
// projection's status (strata_sink_errors_total).
func (m *Metrics) SinkWrite(view, sink string, took time.Duration) {
	m.sinkDuration.WithLabelValues(view, sink).Observe(took.Seconds())
}

// HTTPRequest counts an answered request. route is the pattern that
// matched ("" for none); an unusual method counts as "other".
func (m *Metrics) HTTPRequest(route, method string, code int, took time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
	default:
		method = "other"
	}
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(took.Seconds())
}
