// Package bench measures Strata end to end on a broker: the scenarios of
// `strata bench`. Each scenario cleans up its topics and reports a Result.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/node"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Result is one scenario's figures; JSON is one object per scenario.
type Result struct {
	Name           string         `json:"name"`
	ThroughputPerS float64        `json:"throughput_per_s"`
	P50ms          float64        `json:"p50_ms"`
	P99ms          float64        `json:"p99_ms"`
	BaselinePerS   float64        `json:"baseline_per_s,omitempty"`
	Ratio          float64        `json:"ratio,omitempty"`
	Seconds        float64        `json:"seconds"`
	Extra          map[string]any `json:"extra,omitempty"`
}

// Env is what scenarios run with.
type Env struct {
	Opts       []kgo.Opt // connect to the broker
	Partitions int32
	Progress   io.Writer // human progress lines
	// Brokers are the broker addresses, and Exec the strata binary: the
	// memory scenario runs `Exec serve --brokers …` in its own process.
	Brokers []string
	Exec    string
	// Log receives the logs of the nodes scenarios start (nil: none).
	Log *slog.Logger
}

func (e *Env) progress(format string, args ...any) {
	if e.Progress != nil {
		fmt.Fprintf(e.Progress, "  "+format+"\n", args...)
	}
}

func namespace() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "bench" + hex.EncodeToString(b[:])
}

// deleteTopics removes a scenario's topics.
func (e *Env) deleteTopics(ns string, topics ...string) {
	cl, err := kgo.NewClient(e.Opts...)
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = kadm.NewClient(cl).DeleteTopics(ctx, topics...)
}

// accountTopics creates the account topics of namespace ns and returns a
// function that deletes them.
func (e *Env) accountTopics(ctx context.Context, ns string) (func(), error) {
	names := kafka.Names{Namespace: ns}
	cl, err := kgo.NewClient(e.Opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	specs := names.AggregateTopics(account.Name, e.Partitions)
	if _, err := kafka.EnsureTopics(ctx, kadm.NewClient(cl), -1, specs); err != nil {
		return nil, err
	}
	var topics []string
	for _, s := range specs {
		topics = append(topics, s.Name)
	}
	return func() { e.deleteTopics(ns, topics...) }, nil
}

// accountNode creates the account topics of namespace ns and starts a node
// on them; done stops the node and deletes the topics.
func (e *Env) accountNode(ctx context.Context, ns string, cfg node.Config) (n *runningNode, done func(), err error) {
	dropTopics, err := e.accountTopics(ctx, ns)
	if err != nil {
		return nil, nil, err
	}
	if n, err = e.startNode(ctx, ns, cfg); err != nil {
		dropTopics()
		return nil, nil, err
	}
	return n, func() { _ = n.stop(); dropTopics() }, nil
}

// runningNode is a node started by a scenario, on an empty data directory.
type runningNode struct {
	url  string
	stop func() error
}

// startNode starts a node of the account aggregate on namespace ns; cfg
// may set SnapshotEvery and the like.
func (e *Env) startNode(ctx context.Context, ns string, cfg node.Config) (*runningNode, error) {
	dir, err := os.MkdirTemp("", "strata-bench-node")
	if err != nil {
		return nil, err
	}
	nctx, cancel := context.WithCancel(ctx)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	cfg.Opts, cfg.Namespace, cfg.Partitions, cfg.DataDir, cfg.HTTPAddr = e.Opts, ns, e.Partitions, dir, "127.0.0.1:0"
	cfg.Types = []aggregates.Type{account.Type}
	cfg.OnReady = func(url string) { ready <- url }
	cfg.Log = e.Log
	go func() { done <- node.Run(nctx, cfg) }()
	stop := func() error {
		cancel()
		err := <-done
		os.RemoveAll(dir)
		return err
	}
	select {
	case url := <-ready:
		return &runningNode{url: url, stop: stop}, nil
	case err := <-done:
		cancel()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("node: %w", err)
	}
}
