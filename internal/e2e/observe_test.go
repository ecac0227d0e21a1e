package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/projections"
	"github.com/strata-es/strata/projections/accounts"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// scrape reads the node's /metrics through its real handler: series (name
// and labels sorted by name, as series() writes them) → value; histograms
// as NAME_count and NAME_sum.
func (s *server) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics: not the Prometheus text format: %v", err)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var kv []string
			for _, l := range m.GetLabel() {
				kv = append(kv, l.GetName(), l.GetValue())
			}
			switch {
			case m.Gauge != nil:
				out[series(name, kv...)] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[series(name, kv...)] = m.GetCounter().GetValue()
			case m.Histogram != nil:
				out[series(name+"_count", kv...)] = float64(m.GetHistogram().GetSampleCount())
				out[series(name+"_sum", kv...)] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// series names one series: name{k="v",…} with the labels sorted by name.
func series(name string, kv ...string) string {
	var labels []string
	for i := 0; i+1 < len(kv); i += 2 {
		labels = append(labels, kv[i]+`="`+kv[i+1]+`"`)
	}
	if len(labels) == 0 {
		return name
	}
	sort.Strings(labels)
	return name + "{" + strings.Join(labels, ",") + "}"
}

// testMetrics: after commands of every outcome, over HTTP and Kafka, the
// node's /metrics counts them by aggregate, type and outcome, times them,
// counts the events, snapshots and the dead-lettered record, shows the
// consumer lag and the projections' offsets, and the HTTP requests by route
// and code.
func testMetrics(t *testing.T, b *broker) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir(), snapshotEvery: 2})
	post := func(id, body string, want int) {
		t.Helper()
		var out map[string]any
		if code := s.do(t, "POST", "/v1/commands/account/"+id, body, &out); code != want {
			t.Fatalf("POST %s %s: %d %v, want %d", id, body, code, out, want)
		}
	}
	post("acc-m1", `{"type":"OpenAccount","data":{"owner":"mo","initial_balance":10}}`, 200)
	post("acc-m1", `{"type":"Deposit","data":{"amount":5}}`, 200) // version 2: a snapshot
	post("acc-m1", `{"type":"Withdraw","data":{"amount":1000}}`, 422)
	post("acc-m1", `{"type":"Deposit","data":{"amount":5},"expected_version":99}`, 409)
	post("acc-m2", `{"type":"OpenAccount","data":{"owner":"mi","initial_balance":0},"command_id":"open-m2"}`, 200)
	post("acc-m2", `{"type":"OpenAccount","data":{"owner":"mi","initial_balance":0},"command_id":"open-m2"}`, 200) // a resend
	cl := kafkaClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce(t, cl, &kgo.Record{Topic: names.Commands("account"), Partition: kafka.PartitionFor([]byte("acc-m3"), 4), Key: []byte("acc-m3"),
		Value: []byte{0xde, 0xad}, Headers: hdrs("strata-command-id", "garbage-m3")})

	var m map[string]float64
	eventually(t, 20*time.Second, func() bool {
		m = s.scrape(t)
		return m[series("strata_dlq_records_total", "aggregate", "account", "reason", "undecodable")] == 1
	}, func() string { return "the dead-lettered record is not counted" })

	cmd := func(typ, outcome string) string {
		return series("strata_commands_total", "aggregate", "account", "type", typ, "outcome", outcome)
	}
	for key, want := range map[string]float64{
		cmd("OpenAccount", "accepted"):  2,
		cmd("OpenAccount", "duplicate"): 1,
		cmd("Deposit", "accepted"):      1,
		cmd("Deposit", "conflict"):      1,
		cmd("Withdraw", "rejected"):     1,
		cmd("Withdraw", "accepted"):     0,
		cmd("unknown", "invalid"):       1,
		cmd("OpenAccount", "invalid"):   0,
		series("strata_command_duration_seconds_count", "aggregate", "account", "outcome", "accepted"):  3,
		series("strata_command_duration_seconds_count", "aggregate", "account", "outcome", "duplicate"): 1,
		series("strata_command_duration_seconds_count", "aggregate", "account", "outcome", "invalid"):   1,
		series("strata_events_written_total", "aggregate", "account", "type", "AccountOpened"):          2,
		series("strata_events_written_total", "aggregate", "account", "type", "MoneyDeposited"):         1,
		series("strata_events_written_total", "aggregate", "account", "type", "MoneyWithdrawn"):         0,
		series("strata_snapshot_writes_total", "aggregate", "account"):                                  1,
		series("strata_dlq_records_total", "aggregate", "account", "reason", "bad_key"):                 0,
		series("strata_processor_partitions", "aggregate", "account", "state", "owned"):                 4,
		series("strata_processor_partitions", "aggregate", "account", "state", "catching_up"):           0,
		series("strata_processor_partitions", "aggregate", "order", "state", "owned"):                   4,
		series("strata_broker_reachable"):                                                                                     1,
		series("strata_projection_running", "projection", "accounts"):                                                         1,
		series("strata_projection_parked_events", "projection", "accounts"):                                                   0,
		series("strata_http_requests_total", "route", "POST /v1/commands/{aggregate}/{id}", "method", "POST", "code", "200"):  4,
		series("strata_http_requests_total", "route", "POST /v1/commands/{aggregate}/{id}", "method", "POST", "code", "422"):  1,
		series("strata_http_requests_total", "route", "POST /v1/commands/{aggregate}/{id}", "method", "POST", "code", "409"):  1,
		series("strata_http_request_duration_seconds_count", "route", "POST /v1/commands/{aggregate}/{id}", "method", "POST"): 6,
	} {
		if got, ok := m[key]; !ok || got != want {
			t.Errorf("%s = %v (present: %v), want %v", key, got, ok, want)
		}
	}
	// A command takes more than nothing and, here, less than a few seconds.
	if sum := m[series("strata_command_duration_seconds_sum", "aggregate", "account", "outcome", "accepted")]; sum <= 0 || sum > 30 {
		t.Errorf("accepted commands took %gs in all", sum)
	}
	// Every committed batch went through every stage.
	commits := m[series("strata_command_stage_duration_seconds_count", "aggregate", "account", "stage", "commit")]
	for _, stage := range []string{"decide", "produce", "commit", "pebble"} {
		if n := m[series("strata_command_stage_duration_seconds_count", "aggregate", "account", "stage", stage)]; n < 1 || n < commits {
			t.Errorf("stage %s observed %v times, %v commits", stage, n, commits)
		}
	}
	if n := m[series("strata_restore_duration_seconds_count", "aggregate", "account")]; n < 1 {
		t.Errorf("no catch-up of the account partitions observed: %v", n)
	}
	if _, ok := m["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}

	// The commands partitions were consumed to their end; the accounts
	// view applied every events partition to its end, markers included.
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), names.Events("account"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool {
		m = s.scrape(t)
		lags := 0
		for key, v := range m {
			if strings.HasPrefix(key, "strata_consumer_lag_records{") && strings.Contains(key, `group="`+names.ProcessorGroup("account")+`"`) {
				if v != 0 {
					return false
				}
				lags++
			}
		}
		if lags == 0 {
			return false
		}
		for _, part := range []int32{0, 1, 2, 3} {
			end, _ := ends.Lookup(names.Events("account"), part)
			labels := []string{"projection", "accounts", "topic", names.Events("account"), "partition", fmt.Sprint(part)}
			if m[series("strata_projection_applied_offset", labels...)] != float64(end.Offset) || m[series("strata_projection_lag_records", labels...)] != 0 {
				return false
			}
		}
		return true
	}, func() string {
		var lines []string
		for key, v := range m {
			if strings.Contains(key, "lag") || strings.Contains(key, "applied_offset") {
				lines = append(lines, fmt.Sprintf("%s %v", key, v))
			}
		}
		sort.Strings(lines)
		return fmt.Sprintf("lags and offsets do not reach the ends %v:\n%s", ends, strings.Join(lines, "\n"))
	})
}

// readyz returns /readyz's status and checks.
func (s *server) readyz(t *testing.T) (int, map[string]string) {
	t.Helper()
	var body struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
	}
	code := s.do(t, "GET", "/readyz", "", &body)
	if body.Ready != (code == 200) {
		t.Fatalf("/readyz: %d with ready %v", code, body.Ready)
	}
	return code, body.Checks
}

// testReadyzProjectionLag: a node is not ready while a projection is
// further behind than its bound, and says which and by how much; it is
// ready once the projection caught up.
func testReadyzProjectionLag(t *testing.T, b *broker) {
	ns, dir := namespace(), t.TempDir()
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: dir, projections: []projections.Projection{accounts.Projection}})
	s.send(t, "acc-l", "OpenAccount", `{"owner":"lu","initial_balance":0}`)
	for range 5 {
		s.send(t, "acc-l", "Deposit", `{"amount":1}`)
	}
	s.stop(t)

	// A new view reads those 6 events from the start, held at its first.
	release := make(chan struct{})
	var once sync.Once
	held := projections.Projection{
		Name:       "held",
		Aggregates: []string{account.Name},
		Apply: func(tx projections.Tx, ev projections.Event) error {
			<-release
			return tx.Put(ev.AggregateID, map[string]uint64{"version": ev.Version})
		},
	}
	s = startNode(t, b, nodeOpts{ns: ns, dataDir: dir, projectionMaxLag: 3, projections: []projections.Projection{accounts.Projection, held}})
	// Cleanups run last first: this one before the node's stop, which
	// would wait for the held Apply.
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	var checks map[string]string
	eventually(t, 20*time.Second, func() bool {
		var code int
		code, checks = s.readyz(t)
		return code == 503 && strings.Contains(checks["projection held"], "offsets behind") &&
			strings.HasPrefix(checks["processor account"], "ok") && strings.HasPrefix(checks["broker"], "ok")
	}, func() string { return fmt.Sprintf("/readyz does not blame the held projection alone: %v", checks) })
	if why := checks["projection held"]; !strings.Contains(why, "bound of 3") || !strings.Contains(why, "--projection-max-lag") {
		t.Errorf("the reason does not say the bound and how to change it: %q", why)
	}
	if !strings.HasPrefix(checks["projection accounts"], "ok") {
		t.Errorf("the caught-up projection: %q", checks["projection accounts"])
	}
	var lag float64
	for key, v := range s.scrape(t) {
		if strings.HasPrefix(key, "strata_projection_lag_records{") && strings.Contains(key, `projection="held"`) {
			lag += v
		}
	}
	if lag < 6 {
		t.Errorf("strata_projection_lag_records of the held view sum to %v, want at least its 6 events", lag)
	}

	once.Do(func() { close(release) })
	eventually(t, 20*time.Second, func() bool {
		var code int
		code, checks = s.readyz(t)
		return code == 200
	}, func() string { return fmt.Sprintf("not ready after the projection caught up: %v", checks) })
	if !strings.HasPrefix(checks["projection held"], "ok") {
		t.Errorf("ready, but the projection's check says %q", checks["projection held"])
	}
}

// testReadyzWhileCatchingUp: a node is not ready while a partition it owns
// is still catching up its state (here held by a transaction left open on
// the events topic), and is once it has.
func testReadyzWhileCatchingUp(t *testing.T, b *broker) {
	ns, dir := namespace(), t.TempDir()
	names := kafka.Names{Namespace: ns}
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: dir})
	s.send(t, "acc-c", "OpenAccount", `{"owner":"cy","initial_balance":0}`)
	s.stop(t)

	txn := kafkaClient(t, b, kgo.TransactionalID(ns+"-open-txn"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Topic: names.Events("account"), Partition: 0, Key: []byte("nobody"), Value: []byte("never committed")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	s = startNode(t, b, nodeOpts{ns: ns, dataDir: dir})
	var checks map[string]string
	eventually(t, 20*time.Second, func() bool {
		var code int
		code, checks = s.readyz(t)
		return code == 503 && strings.Contains(checks["processor account"], "catching up")
	}, func() string { return fmt.Sprintf("/readyz does not say the account partitions catch up: %v", checks) })
	if why := checks["processor account"]; !strings.Contains(why, names.Events("account")) || !strings.Contains(why, "partition(s) [") {
		t.Errorf("the reason names neither the topic nor the partitions: %q", why)
	}
	if n := s.scrape(t)[series("strata_processor_partitions", "aggregate", "account", "state", "catching_up")]; n < 1 {
		t.Errorf("strata_processor_partitions catching_up = %v while catching up", n)
	}

	if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() bool {
		var code int
		code, checks = s.readyz(t)
		return code == 200
	}, func() string { return fmt.Sprintf("not ready after the transaction ended: %v", checks) })
	if !strings.HasPrefix(checks["processor account"], "ok: owns partition(s) [0 1 2 3]") {
		t.Errorf("ready, but the processor's check says %q", checks["processor account"])
	}
}

// testReadyzBrokerDown: with the broker gone, /readyz says it is
// unreachable (a background check asks the broker, not the probe) and the
// metrics say so; with the broker back, the node is ready again.
func testReadyzBrokerDown(t *testing.T, b *broker) {
	if b.external() {
		t.Skip("stops the broker: embedded broker only")
	}
	s := startNode(t, b, nodeOpts{ns: namespace(), dataDir: t.TempDir(), brokerCheckEvery: 100 * time.Millisecond})
	var checks map[string]string
	eventually(t, 20*time.Second, func() bool {
		var code int
		code, checks = s.readyz(t)
		return code == 200
	}, func() string { return fmt.Sprintf("never ready: %v", checks) })

	b.down()
	eventually(t, 20*time.Second, func() bool {
		var code int
		code, checks = s.readyz(t)
		return code == 503 && strings.Contains(checks["broker"], "unreachable")
	}, func() string { return fmt.Sprintf("/readyz does not see the broker gone: %v", checks) })
	if why := checks["broker"]; !strings.Contains(why, "--brokers") {
		t.Errorf("the reason does not say what to check: %q", why)
	}
	if up := s.scrape(t)["strata_broker_reachable"]; up != 0 {
		t.Errorf("strata_broker_reachable = %v with the broker down", up)
	}

	b.up(t)
	eventually(t, 60*time.Second, func() bool {
		var code int
		code, checks = s.readyz(t)
		return code == 200
	}, func() string { return fmt.Sprintf("not ready after the broker came back: %v", checks) })
	if code, _ := s.send(t, "acc-b", "OpenAccount", `{"owner":"bo","initial_balance":0}`); code != 200 {
		t.Fatalf("a command after the broker came back: %d", code)
	}
}

// syncBuffer is a bytes.Buffer safe for the node's concurrent logging.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the JSON log records written so far.
func (b *syncBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	data := append([]byte(nil), b.buf.Bytes()...)
	b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("a log line that is not JSON: %q: %v", sc.Text(), err)
		}
		out = append(out, rec)
	}
	return out
}

// testLogsSayWhere: with JSON logs, the record of a command sent to the
// dead-letter topic carries the topic, partition and offset of the command
// record and its command ID, at level WARN; at debug level every command
// decided does too.
func testLogsSayWhere(t *testing.T, b *broker) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir(), log: log})

	cl := kafkaClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	part := kafka.PartitionFor([]byte("acc-log"), 4)
	bad := &kgo.Record{Topic: names.Commands("account"), Partition: part, Key: []byte("acc-log"), Value: []byte(`{"amount":`),
		Headers: hdrs("strata-command-type", "Deposit", "strata-command-id", "log-dlq", "content-type", "application/json")}
	good := &kgo.Record{Topic: names.Commands("account"), Partition: part, Key: []byte("acc-log"), Value: []byte(`{"owner":"lo","initial_balance":1}`),
		Headers: hdrs("strata-command-type", "OpenAccount", "strata-command-id", "log-ok", "content-type", "application/json")}
	produce(t, cl, bad, good)

	find := func(msg, commandID string) map[string]any {
		for _, rec := range logs.records(t) {
			if rec["msg"] == msg && rec["command_id"] == commandID {
				return rec
			}
		}
		return nil
	}
	var dlq, decided map[string]any
	eventually(t, 20*time.Second, func() bool {
		dlq, decided = find("command record sent to the dead-letter topic", "log-dlq"), find("command decided", "log-ok")
		return dlq != nil && decided != nil
	}, func() string {
		return fmt.Sprintf("no log of the dead-lettered command (%v) or of the decided one (%v)", dlq, decided)
	})
	for _, c := range []struct {
		rec   map[string]any
		from  *kgo.Record
		level string
	}{{dlq, bad, "WARN"}, {decided, good, "DEBUG"}} {
		if c.rec["level"] != c.level || c.rec["topic"] != c.from.Topic || c.rec["partition"] != float64(c.from.Partition) || c.rec["offset"] != float64(c.from.Offset) || c.rec["aggregate"] != "account" {
			t.Errorf("log %v: want level %s, topic %s, partition %d, offset %d, aggregate account", c.rec, c.level, c.from.Topic, c.from.Partition, c.from.Offset)
		}
	}
	if reason, _ := dlq["reason"].(string); !strings.Contains(reason, "Deposit data") {
		t.Errorf("the DLQ log's reason: %q", reason)
	}
	if decided["outcome"] != "accepted" || decided["type"] != "OpenAccount" || decided["aggregate_id"] != "acc-log" {
		t.Errorf("the decided command's log: %v", decided)
	}
}
