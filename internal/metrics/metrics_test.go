package metrics

import (
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func testAggregate(m *Metrics) *Aggregate {
	return m.Aggregate(AggregateNames{
		Aggregate: "account", CommandTypes: []string{"OpenAccount", "Deposit"}, EventTypes: []string{"AccountOpened", "MoneyDeposited"},
		Group: "strata.account.processor", Topic: "strata.account.commands",
	})
}

// TestNamesFollowConventions runs Prometheus's own linter over every
// Strata metric: units in names, _total on counters, help on everything.
func TestNamesFollowConventions(t *testing.T) {
	m := New()
	a := testAggregate(m)
	a.SetLag(0, 3)
	m.HTTPRequest("GET /healthz", "GET", 200, time.Millisecond)
	m.WatchProjections(func() []ProjectionState {
		return []ProjectionState{{Name: "accounts", Running: true, Partitions: []ProjectionPartition{{Topic: "strata.account.events", Partition: 0, Next: 5}}}}
	})
	m.WatchProcessors(func() []ProcessorState { return []ProcessorState{{Aggregate: "account"}} })
	m.WatchBroker(func() bool { return true })
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	strata := 0
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "strata_") {
			strata++
		}
	}
	// 12 vectors and 9 state metrics.
	if strata != 21 {
		t.Errorf("%d strata_ metric families gathered, want 21", strata)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "strata_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

// TestCommandTypesAreBounded: a type the aggregate does not declare, as a
// client may put in a header, counts as "unknown"; outcomes and durations
// go to their own series.
func TestCommandTypesAreBounded(t *testing.T) {
	m := New()
	a := testAggregate(m)
	a.CommandType("Deposit").Done(Accepted, 3*time.Millisecond)
	a.CommandType("Deposit").Done(Rejected, 5*time.Millisecond)
	a.CommandType("DROP TABLE accounts").Done(Invalid, time.Millisecond)
	a.CommandType("").Done(Duplicate, -time.Second) // a producer clock ahead: counted as 0
	want := `
# HELP strata_commands_total Commands decided, by aggregate type, command type and outcome (accepted, rejected, conflict, invalid; duplicate: a resent command ID answered with its first result). Counted when their transaction commits. A type the aggregate does not declare counts as "unknown".
# TYPE strata_commands_total counter
` + zeroes("OpenAccount", nil) + zeroes("Deposit", map[string]int{"accepted": 1, "rejected": 1}) + zeroes("unknown", map[string]int{"invalid": 1, "duplicate": 1})
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "strata_commands_total"); err != nil {
		t.Error(err)
	}
	for outcome, n := range map[string]uint64{"accepted": 1, "rejected": 1, "invalid": 1, "duplicate": 1, "conflict": 0} {
		if got := histogramCount(t, m, "strata_command_duration_seconds", map[string]string{"aggregate": "account", "outcome": outcome}); got != n {
			t.Errorf("duration count of %s: %d, want %d", outcome, got, n)
		}
	}
	if got := histogramSum(t, m, "strata_command_duration_seconds", map[string]string{"aggregate": "account", "outcome": "duplicate"}); got != 0 {
		t.Errorf("a negative duration was observed as %gs, want 0", got)
	}
}

// zeroes is the exposition of strata_commands_total for one type: every
// outcome, with the counts given and 0 for the others.
func zeroes(typ string, counts map[string]int) string {
	var b strings.Builder
	for _, o := range []string{"accepted", "conflict", "duplicate", "invalid", "rejected"} {
		b.WriteString(`strata_commands_total{aggregate="account",outcome="` + o + `",type="` + typ + `"} ` + strconv.Itoa(counts[o]) + "\n")
	}
	return b.String()
}

// TestLagOfRevokedPartitionsGoes: a partition given up leaves no series
// behind; given back, it has one again.
func TestLagOfRevokedPartitionsGoes(t *testing.T) {
	m := New()
	a := testAggregate(m)
	a.SetLag(1, 7)
	a.SetLag(2, -3) // a stale watermark: never negative
	want := `
# HELP strata_consumer_lag_records Records of a partition this node's consumer group member has not consumed yet: the partition's last stable offset minus the next offset to consume, as of the last fetch of the partition. Only partitions assigned to this node.
# TYPE strata_consumer_lag_records gauge
strata_consumer_lag_records{group="strata.account.processor",partition="1",topic="strata.account.commands"} 7
strata_consumer_lag_records{group="strata.account.processor",partition="2",topic="strata.account.commands"} 0
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "strata_consumer_lag_records"); err != nil {
		t.Error(err)
	}
	a.ForgetLag(1)
	a.ForgetLag(3) // never set: nothing to do
	if n, err := testutil.GatherAndCount(m.Registry(), "strata_consumer_lag_records"); err != nil || n != 1 {
		t.Errorf("%d lag series after forgetting partition 1 (%v), want 1", n, err)
	}
	a.SetLag(1, 0)
	if n, _ := testutil.GatherAndCount(m.Registry(), "strata_consumer_lag_records"); n != 2 {
		t.Errorf("%d lag series after partition 1 came back, want 2", n)
	}
}

// TestHTTPLabelsAreBounded: a method nobody uses is "other"; a request no
// route matched is "unmatched".
func TestHTTPLabelsAreBounded(t *testing.T) {
	m := New()
	m.HTTPRequest("GET /v1/views/{view}/{key}", "GET", 200, 2*time.Millisecond)
	m.HTTPRequest("", "BREW", 404, time.Millisecond)
	m.HTTPRequest("", "GET", 404, time.Millisecond)
	want := `
# HELP strata_http_requests_total HTTP requests answered, by route (the API's pattern, "unmatched" for none), method ("other" for unusual ones) and status code.
# TYPE strata_http_requests_total counter
strata_http_requests_total{code="200",method="GET",route="GET /v1/views/{view}/{key}"} 1
strata_http_requests_total{code="404",method="GET",route="unmatched"} 1
strata_http_requests_total{code="404",method="other",route="unmatched"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "strata_http_requests_total"); err != nil {
		t.Error(err)
	}
}

// TestStateIsReadAtScrape: the projection, processor and broker metrics
// are what the watched functions say when /metrics is scraped, served by
// Handler in the text format.
func TestStateIsReadAtScrape(t *testing.T) {
	m := New()
	lag := int64(40)
	m.WatchProjections(func() []ProjectionState {
		return []ProjectionState{{
			Name: "accounts", Running: true, Applied: 60, ParkedAggregates: 1, ParkedEvents: 3,
			Partitions: []ProjectionPartition{{Topic: "strata.account.events", Partition: 0, Next: 60, Lag: lag}},
		}}
	})
	m.WatchProcessors(func() []ProcessorState {
		return []ProcessorState{{Aggregate: "account", Owned: 4, CatchingUp: 1}}
	})
	up := true
	m.WatchBroker(func() bool { return up })
	scrape := func() map[string]float64 {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if rec.Code != 200 {
			t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
		}
		return flatten(t, rec.Body)
	}
	got := scrape()
	for series, want := range map[string]float64{
		`strata_projection_applied_offset{partition="0",projection="accounts",topic="strata.account.events"}`: 60,
		`strata_projection_lag_records{partition="0",projection="accounts",topic="strata.account.events"}`:    40,
		`strata_projection_events_applied_total{projection="accounts"}`:                                       60,
		`strata_projection_parked_events{projection="accounts"}`:                                              3,
		`strata_projection_parked_aggregates{projection="accounts"}`:                                          1,
		`strata_projection_running{projection="accounts"}`:                                                    1,
		`strata_processor_partitions{aggregate="account",state="owned"}`:                                      4,
		`strata_processor_partitions{aggregate="account",state="catching_up"}`:                                1,
		`strata_processor_partitions{aggregate="account",state="failed"}`:                                     0,
		`strata_broker_reachable`: 1,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("no go_goroutines: the Go collector is not registered")
	}
	if _, ok := got["process_start_time_seconds"]; !ok {
		t.Error("no process_start_time_seconds: the process collector is not registered")
	}
	lag, up = 0, false
	got = scrape()
	if v := got[`strata_projection_lag_records{partition="0",projection="accounts",topic="strata.account.events"}`]; v != 0 {
		t.Errorf("lag after catching up: %v, want 0", v)
	}
	if v := got["strata_broker_reachable"]; v != 0 {
		t.Errorf("strata_broker_reachable with the broker down: %v, want 0", v)
	}
}

// flatten parses the text exposition into series → value, with labels
// sorted by name as Prometheus prints them; histograms as _count and _sum.
func flatten(t *testing.T, r io.Reader) map[string]float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			series := name
			if len(labels) > 0 {
				series += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Gauge != nil:
				out[series] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[series] = m.GetCounter().GetValue()
			case m.Untyped != nil:
				out[series] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}

func histogramCount(t *testing.T, m *Metrics, name string, labels map[string]string) uint64 {
	t.Helper()
	h := findHistogram(t, m, name, labels)
	if h == nil {
		return 0
	}
	return h.GetSampleCount()
}

func histogramSum(t *testing.T, m *Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	h := findHistogram(t, m, name, labels)
	if h == nil {
		t.Fatalf("no %s %v", name, labels)
	}
	return h.GetSampleSum()
}

// findHistogram returns the histogram of name with exactly labels, or nil.
func findHistogram(t *testing.T, m *Metrics, name string, labels map[string]string) *dto.Histogram {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metric
				}
			}
			return m.GetHistogram()
		}
	}
	return nil
}
