package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/devbroker"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestServeStopsWhileItsViewCannotBePublished: the broker drops every
// connection that writes to the published view's topic, as a broker that
// dies mid-request does. The idempotent producer cannot fail a batch whose
// request was sent, and retries it for as long as the client lives; a node
// stopping then waited for it forever (a CI run found it when the test
// broker was closed before the node).
func TestServeStopsWhileItsViewCannotBePublished(t *testing.T) {
	c, addr, err := devbroker.Start(devbroker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close) // after strata stops, however the test ends
	url, stop, _ := startStrata(t, "serve", "--brokers", addr, "--data", t.TempDir(), "--http", "127.0.0.1:0", "--log-level", "error")
	const topic = "strata.view.accounts"
	id := topicDetail(t, addr, topic).ID // produce requests name topics by ID from v13
	var dropped atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			if tp.Topic == topic || tp.TopicID == id {
				dropped.Add(1)
				return nil, errors.New("the view's topic is unreachable"), true
			}
		}
		return nil, nil, false
	})
	if code, out, errs := cli(t, "send", "account", "acc-s", "OpenAccount", `{"owner":"sy","initial_balance":1}`, "--http", url); code != 0 {
		t.Fatalf("send: %d %s %s", code, out, errs)
	}
	deadline := time.Now().Add(20 * time.Second)
	for dropped.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the view was not published (%d requests dropped)", dropped.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopWithin(t, stop, 20*time.Second, "while its view could not be published")
}

// TestServeStopsWithItsBrokerGone: Ctrl-C stops a node whose broker has
// gone away, in the time its Kafka clients take to give up leaving their
// groups, not the minutes their retries could last.
func TestServeStopsWithItsBrokerGone(t *testing.T) {
	c, addr, err := devbroker.Start(devbroker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	url, stop, _ := startStrata(t, "serve", "--brokers", addr, "--data", t.TempDir(), "--http", "127.0.0.1:0", "--log-level", "error")
	if code, out, errs := cli(t, "send", "account", "acc-s", "OpenAccount", `{"owner":"sy","initial_balance":1}`, "--http", url); code != 0 {
		t.Fatalf("send: %d %s %s", code, out, errs)
	}
	c.Close()
	stopWithin(t, stop, 20*time.Second, "with its broker gone")
}

// topicDetail describes topic on the broker at addr, failing the test if
// it cannot.
func topicDetail(t *testing.T, addr, topic string) kadm.TopicDetail {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("topic %s: %v %v", topic, err, td[topic].Err)
	}
	return td[topic]
}

// stopWithin stops a strata started by startStrata, and fails the test
// unless it stopped within d.
func stopWithin(t *testing.T, stop func(), d time.Duration, why string) {
	t.Helper()
	stopped := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		stop()
		stopped <- time.Since(start)
	}()
	select {
	case took := <-stopped:
		t.Logf("stopped in %v", took)
	case <-time.After(d):
		t.Errorf("strata serve did not stop in %v %s", d, why)
		<-stopped // stop gives up after 30s, saying so
	}
}

// TestServeTakesTheInstanceIDGiven: --instance-id names the process
// instead of the ID kept in its data directory, which it then leaves
// alone; a bad one is refused naming the flag.
func TestServeTakesTheInstanceIDGiven(t *testing.T) {
	c, addr, err := devbroker.Start(devbroker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	data := t.TempDir()
	url, _, _ := startStrata(t, "serve", "--brokers", addr, "--data", data, "--http", "127.0.0.1:0", "--log-level", "error", "--instance-id", "pod-7")
	code, out, errs := cli(t, "status", "--http", url)
	if code != 0 || !strings.Contains(out, `"instance": "pod-7"`) {
		t.Fatalf("status: %d %s %s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(data, "instance-id")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an instance-id file was written with --instance-id given: %v", err)
	}
	code, _, errs = cli(t, "serve", "--brokers", addr, "--data", t.TempDir(), "--instance-id", "pod/7")
	if code != exitUsage || !strings.Contains(errs, "--instance-id") {
		t.Fatalf("a bad instance ID: %d %s", code, errs)
	}
}
