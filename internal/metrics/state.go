package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// The state metrics are read when /metrics is scraped, from functions the
// node gives (Watch*): what a projection has applied, what a processor owns,
// whether the broker answers. Nothing on the hot paths counts them, and a
// partition or projection that goes away leaves no stale series behind.

// ProjectionState is what a projection reports at a scrape.
type ProjectionState struct {
	Name string
	// Running is false while the projection starts, and once it stopped
	// or failed.
	Running bool
	// Applied is how many events it applied since it started.
	Applied int64
	// FailedPartitions are stopped at an event it cannot read.
	FailedPartitions int
	// ParkedAggregates and ParkedEvents are set aside after failing to
	// apply (see projections.Parked).
	ParkedAggregates, ParkedEvents int
	Partitions                     []ProjectionPartition
	Sinks                          []SinkState
}

// SinkState is how one of a projection's sinks is doing.
type SinkState struct {
	Name string
	// Up is false while the sink fails (the view waits for it).
	Up bool
	// Errors counts its failed attempts since the projection started.
	Errors int64
}

// ProjectionPartition is how far a projection is in one partition.
type ProjectionPartition struct {
	Topic     string
	Partition int32
	// Next is the next offset to apply: every offset before it is
	// applied (Kafka's committed-offset convention).
	Next int64
	Lag  int64
}

// ProcessorState is what a command processor reports at a scrape.
type ProcessorState struct {
	Aggregate string
	// Owned, CatchingUp and Failed count commands partitions: assigned to
	// this node; assigned and still catching up their state; stopped at
	// an event this build cannot apply.
	Owned, CatchingUp, Failed int
}

// WatchProjections sets the function read at each scrape for the
// projection metrics.
func (m *Metrics) WatchProjections(f func() []ProjectionState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.projections = f
}

// WatchProcessors sets the function read at each scrape for the processor
// partition metrics.
func (m *Metrics) WatchProcessors(f func() []ProcessorState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.processors = f
}

// WatchBroker sets the function read at each scrape for
// strata_broker_reachable: whether the last check of the brokers succeeded.
func (m *Metrics) WatchBroker(f func() bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.broker = f
}

var (
	descProjApplied = prometheus.NewDesc("strata_projection_applied_offset",
		"Next offset of an events partition a projection will apply: every offset before it is in the view.", []string{"projection", "topic", "partition"}, nil)
	descProjLag = prometheus.NewDesc("strata_projection_lag_records",
		"Offsets of an events partition a projection has not applied yet, up to the last stable offset seen in its fetches.", []string{"projection", "topic", "partition"}, nil)
	descProjEvents = prometheus.NewDesc("strata_projection_events_applied_total",
		"Events a projection applied since it started (a rebuild's swap starts it again).", []string{"projection"}, nil)
	descProjParked = prometheus.NewDesc("strata_projection_parked_events",
		"Events a projection set aside because their aggregate failed to apply (strata projection retry replays them).", []string{"projection"}, nil)
	descProjParkedAggs = prometheus.NewDesc("strata_projection_parked_aggregates",
		"Aggregates whose events a projection set aside.", []string{"projection"}, nil)
	descProjFailed = prometheus.NewDesc("strata_projection_failed_partitions",
		"Events partitions a projection stopped at an event it cannot read (see /v1/status).", []string{"projection"}, nil)
	descProjRunning = prometheus.NewDesc("strata_projection_running",
		"1 while a projection runs, 0 while it starts or after it stopped or failed.", []string{"projection"}, nil)
	descProcPartitions = prometheus.NewDesc("strata_processor_partitions",
		"Commands partitions of an aggregate type's processor on this node, by state: owned (assigned here), catching_up (assigned, state not yet caught up, commands wait), failed (stopped at an event this build cannot apply).",
		[]string{"aggregate", "state"}, nil)
	descSinkUp = prometheus.NewDesc("strata_sink_up",
		"1 while an external sink of a view (postgres, search, cache) takes its writes; 0 while it fails, and the view waits for it (see /v1/status).", []string{"view", "sink"}, nil)
	descSinkErrors = prometheus.NewDesc("strata_sink_errors_total",
		"Failed attempts at an external sink of a view since its projection started; each is retried with backoff.", []string{"view", "sink"}, nil)
	descBroker = prometheus.NewDesc("strata_broker_reachable",
		"1 when the last periodic check of the Kafka brokers (a metadata request) succeeded, 0 otherwise.", nil, nil)
)

// stateCollector collects the state metrics at a scrape.
type stateCollector struct{ m *Metrics }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descProjApplied, descProjLag, descProjEvents, descProjParked, descProjParkedAggs, descProjFailed, descProjRunning, descSinkUp, descSinkErrors, descProcPartitions, descBroker} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	projections, processors, broker := c.m.projections, c.m.processors, c.m.broker
	c.m.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if projections != nil {
		for _, p := range projections() {
			running := 0.0
			if p.Running {
				running = 1
			}
			gauge(descProjRunning, running, p.Name)
			ch <- prometheus.MustNewConstMetric(descProjEvents, prometheus.CounterValue, float64(p.Applied), p.Name)
			gauge(descProjParked, float64(p.ParkedEvents), p.Name)
			gauge(descProjParkedAggs, float64(p.ParkedAggregates), p.Name)
			gauge(descProjFailed, float64(p.FailedPartitions), p.Name)
			for _, s := range p.Sinks {
				up := 0.0
				if s.Up {
					up = 1
				}
				gauge(descSinkUp, up, p.Name, s.Name)
				ch <- prometheus.MustNewConstMetric(descSinkErrors, prometheus.CounterValue, float64(s.Errors), p.Name, s.Name)
			}
			for _, pp := range p.Partitions {
				part := strconv.Itoa(int(pp.Partition))
				gauge(descProjApplied, float64(pp.Next), p.Name, pp.Topic, part)
				gauge(descProjLag, float64(pp.Lag), p.Name, pp.Topic, part)
			}
		}
	}
	if processors != nil {
		for _, p := range processors() {
			gauge(descProcPartitions, float64(p.Owned), p.Aggregate, "owned")
			gauge(descProcPartitions, float64(p.CatchingUp), p.Aggregate, "catching_up")
			gauge(descProcPartitions, float64(p.Failed), p.Aggregate, "failed")
		}
	}
	if broker != nil {
		up := 0.0
		if broker() {
			up = 1
		}
		gauge(descBroker, up)
	}
}
