package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/node"
	"github.com/twmb/franz-go/pkg/kadm"
)

// testTopicsCreatedAndChecked: Strata creates its topics with the
// partitions and configs of DESIGN.md, and refuses to start, naming topic
// and setting, when an existing topic disagrees.
func testTopicsCreatedAndChecked(t *testing.T, b *broker) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir()})
	s.stop(t)
	adm := kadm.NewClient(kafkaClient(t, b))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	want := map[string]map[string]string{
		names.Commands("account"):  {"cleanup.policy": "delete"},
		names.Events("account"):    {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"},
		names.Snapshots("account"): {"cleanup.policy": "compact"},
		names.Results("account"):   {"cleanup.policy": "delete", "retention.ms": "86400000"},
		names.DLQ("account"):       {"cleanup.policy": "delete"},
	}
	var topics []string
	for tp := range want {
		topics = append(topics, tp)
	}
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	configs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	for tp, cfg := range want {
		if n := len(details[tp].Partitions); n != 4 {
			t.Errorf("%s has %d partitions, want 4", tp, n)
		}
		rc, err := configs.On(tp, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, c := range rc.Configs {
			got[c.Key] = c.MaybeValue()
		}
		for k, v := range cfg {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", tp, k, got[k], v)
			}
		}
	}

	// A namespace whose events topic exists with the wrong partition count
	// and a finite retention: refused, with both problems named.
	bad := kafka.Names{Namespace: namespace()}
	if _, err := adm.CreateTopic(ctx, 3, -1, map[string]*string{"retention.ms": kadm.StringPtr("3600000")}, bad.Events("account")); err != nil {
		t.Fatal(err)
	}
	err = node.Run(ctx, node.Config{
		Opts: b.opts(), Namespace: bad.Namespace, Partitions: 4, DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0",
		Types: []aggregates.Type{account.Type},
	})
	if err == nil {
		t.Fatal("node started on a mismatched events topic")
	}
	for _, msg := range []string{
		"topic " + bad.Events("account") + " has 3 partitions, Strata needs 4",
		"topic " + bad.Events("account") + ` has retention.ms="3600000", Strata needs "-1"`,
	} {
		if !strings.Contains(err.Error(), msg) {
			t.Errorf("error lacks %q:\n%v", msg, err)
		}
	}
}

// testDataDirOfOtherTopics: a data directory built from topics that were
// since deleted and recreated, or of another namespace, is refused with the
// topic and the fix named: its checkpoints are offsets of the old topics.
// An empty data directory starts, and rebuilds from the new topics.
func testDataDirOfOtherTopics(t *testing.T, b *broker) {
	ns, dir := namespace(), t.TempDir()
	names := kafka.Names{Namespace: ns}
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: dir})
	if code, res := s.send(t, "acc-t", "OpenAccount", `{"owner":"tia","initial_balance":5}`); code != 200 {
		t.Fatalf("open: %d %v", code, res)
	}
	s.stop(t)
	// run returns why a node on dir does not start.
	run := func(ns string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return node.Run(ctx, node.Config{
			Opts: b.opts(), Namespace: ns, Partitions: 4, DataDir: dir, HTTPAddr: "127.0.0.1:0",
			Types:   []aggregates.Type{account.Type},
			OnReady: func(string) { cancel() }, Log: testLogger(),
		})
	}
	// The same topics: it starts.
	s = startNode(t, b, nodeOpts{ns: ns, dataDir: dir})
	if code, res := s.send(t, "acc-t", "Deposit", `{"amount":1}`); code != 200 || num(res["version"]) != 2 {
		t.Fatalf("deposit after a restart on the same topics: %d %v", code, res)
	}
	s.stop(t)
	other := namespace()
	err := run(other)
	if !errors.Is(err, node.ErrOtherTopics) || !strings.Contains(err.Error(), "built from topic "+names.Commands("account")+", not "+kafka.Names{Namespace: other}.Commands("account")) {
		t.Fatalf("a data directory of another namespace: %v", err)
	}

	adm := kadm.NewClient(kafkaClient(t, b))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := adm.DeleteTopics(ctx, names.Events("account"))
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	// The node recreates the topic (once the brokers have forgotten it),
	// and then refuses the data directory.
	eventually(t, 30*time.Second, func() bool {
		err = run(ns)
		return errors.Is(err, node.ErrOtherTopics)
	}, func() string { return fmt.Sprintf("a data directory of a recreated topic: %v", err) })
	for _, msg := range []string{
		"topic " + names.Events("account") + " was deleted and recreated",
		"data directory " + dir,
		"start on an empty data directory",
	} {
		if !strings.Contains(err.Error(), msg) {
			t.Errorf("error lacks %q:\n%v", msg, err)
		}
	}
	s = startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir()})
	if code, res := s.send(t, "acc-t", "OpenAccount", `{"owner":"tia","initial_balance":5}`); code != 200 || num(res["version"]) != 1 {
		t.Fatalf("open on the recreated topic, from an empty data directory: %d %v", code, res)
	}
}
