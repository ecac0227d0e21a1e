// Package bench measures Strata end to end on a broker: the scenarios of
// `strata bench`. Each scenario cleans up its topics and reports a Result.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"time"

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
