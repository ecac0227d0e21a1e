// Package e2e drives Strata end to end: a node in process, a Kafka broker,
// HTTP and plain Kafka clients. The same tests run against the embedded
// broker (default) and any cluster named by STRATA_TEST_BROKERS.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/aggregates/order"
	"github.com/strata-es/strata/internal/devbroker"
	"github.com/strata-es/strata/internal/httpapi"
	"github.com/strata-es/strata/internal/node"
	"github.com/strata-es/strata/internal/processor"
	"github.com/strata-es/strata/projections"
	"github.com/strata-es/strata/projections/accounts"
	"github.com/strata-es/strata/projections/customers"
	"github.com/strata-es/strata/projections/orders"
	"github.com/strata-es/strata/schemas"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
)

// broker is a Kafka cluster for one test.
type broker struct {
	addrs []string
	// restart stops and starts the broker keeping its data; nil when the
	// broker is external.
	restart func(t *testing.T)
	// down stops the broker and up starts it again on the same address
	// and data (restart is both at once); nil when the broker is external.
	down func()
	up   func(t *testing.T)
	// compact runs the embedded broker's log cleaner now; nil when the
	// broker is external (Kafka's cleaner runs by itself).
	compact func()
	// cluster is the embedded broker, for request-level fault injection;
	// nil when the broker is external.
	cluster *kfake.Cluster
}

// newBroker returns STRATA_TEST_BROKERS when set, else an embedded broker
// persisted in a temporary directory.
func newBroker(t *testing.T) *broker {
	t.Helper()
	if env := os.Getenv("STRATA_TEST_BROKERS"); env != "" {
		return &broker{addrs: strings.Split(env, ",")}
	}
	dir := t.TempDir()
	c, addr, err := devbroker.Start(devbroker.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	b := &broker{addrs: []string{addr}, compact: func() { c.Compact() }, cluster: c}
	port := c.ListenAddrs()[0][strings.LastIndexByte(addr, ':')+1:]
	b.down = func() { c.Close() }
	b.up = func(t *testing.T) {
		var p int
		fmt.Sscan(port, &p)
		c2, _, err := devbroker.Start(devbroker.Options{DataDir: dir, Port: p})
		if err != nil {
			t.Fatal(err)
		}
		c = c2
		b.cluster = c2
	}
	b.restart = func(t *testing.T) {
		b.down()
		b.up(t)
	}
	t.Cleanup(func() { c.Close() })
	return b
}

func (b *broker) external() bool { return b.restart == nil }

// opts connect a node to the broker; STRATA_TEST_KGO_LOG=debug|info logs
// the Kafka client.
func (b *broker) opts() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(b.addrs...)}
	switch os.Getenv("STRATA_TEST_KGO_LOG") {
	case "debug":
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, func() string { return time.Now().Format("15:04:05.000 ") })))
	case "info":
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, func() string { return time.Now().Format("15:04:05.000 ") })))
	}
	return opts
}

// namespace returns a fresh topic namespace, so tests sharing a real
// cluster never see each other's topics.
func namespace() string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	return "t" + hex.EncodeToString(r[:])
}

// testLogger logs to stderr when STRATA_TEST_LOG is set (debug, info,
// warn, error), and nowhere otherwise.
func testLogger() *slog.Logger {
	var lv slog.Level
	if lv.UnmarshalText([]byte(os.Getenv("STRATA_TEST_LOG"))) != nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
}

// server is a running node.
type server struct {
	url    string
	cancel context.CancelFunc
	done   chan error
}

type nodeOpts struct {
	ns                string
	dataDir           string
	commandTimeout    time.Duration
	catalog           *schemas.Catalog // nil: the built-in one
	snapshotEvery     int
	dedupeWindow      time.Duration
	projections       []projections.Projection                               // nil: the built-in views
	tokens            *httpapi.Tokens                                        // nil: no authentication
	readHeaderTimeout time.Duration                                          // 0: the node's default
	tracerProvider    trace.TracerProvider                                   // nil: tracing off
	log               *slog.Logger                                           // nil: testLogger()
	projectionMaxLag  int64                                                  // 0: the node's default
	brokerCheckEvery  time.Duration                                          // 0: the node's default
	metricsAccess     httpapi.MetricsAccess                                  // "": the node's default
	sinks             func(projections.SinkView) ([]projections.Sink, error) // nil: none
}

func startNode(t *testing.T, b *broker, o nodeOpts) *server {
	t.Helper()
	return startNodeWith(t, b, o, processor.Faults{})
}

func startNodeWith(t *testing.T, b *broker, o nodeOpts, faults processor.Faults) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	s := &server{cancel: cancel, done: make(chan error, 1)}
	log := o.log
	if log == nil {
		log = testLogger()
	}
	go func() {
		s.done <- node.Run(ctx, node.Config{
			Opts:              b.opts(),
			Namespace:         o.ns,
			Partitions:        4,
			DataDir:           o.dataDir,
			HTTPAddr:          "127.0.0.1:0",
			Types:             []aggregates.Type{account.Type, order.Type},
			Projections:       o.views(),
			OnReady:           func(url string) { ready <- url },
			Log:               log,
			Faults:            faults,
			CommandTimeout:    o.commandTimeout,
			Catalog:           o.catalog,
			SnapshotEvery:     o.snapshotEvery,
			DedupeWindow:      o.dedupeWindow,
			Tokens:            o.tokens,
			ReadHeaderTimeout: o.readHeaderTimeout,
			TracerProvider:    o.tracerProvider,
			ProjectionMaxLag:  o.projectionMaxLag,
			BrokerCheckEvery:  o.brokerCheckEvery,
			MetricsAccess:     o.metricsAccess,
			Sinks:             o.sinks,
		})
	}()
	select {
	case s.url = <-ready:
	case err := <-s.done:
		cancel()
		t.Fatalf("node did not start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("node did not start in 60s")
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (o nodeOpts) views() []projections.Projection {
	if o.projections != nil {
		return o.projections
	}
	return []projections.Projection{accounts.Projection, orders.Projection, customers.Projection}
}

// wait waits for the node to stop by itself and returns its error.
func (s *server) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.cancel()
		s.cancel = nil
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("node did not stop in 30s")
		return nil
	}
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func (s *server) stop(t *testing.T) {
	t.Helper()
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("node stopped with error: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("node did not stop in 30s")
	}
}

// do sends a request and decodes the JSON answer into out (when not nil).
func (s *server) do(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

// send posts a command and returns the status and decoded body.
func (s *server) send(t *testing.T, id, typ, data string) (int, map[string]any) {
	t.Helper()
	var out map[string]any
	body := fmt.Sprintf(`{"type":%q,"data":%s}`, typ, data)
	code := s.do(t, "POST", "/v1/commands/account/"+id, body, &out)
	return code, out
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(buf.String())
}

// eventually checks cond every 50ms until it holds, and fails the test with
// what() when it does not within timeout.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, what func() string) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what())
		}
	}
}
