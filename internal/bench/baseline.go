package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/store"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Baselines are what the broker and Pebble allow on this machine, measured
// in the same run as Strata's scenarios so their ratios mean something.
type Baselines struct {
	Produce     Result
	Passthrough Result // exactly-once consume→produce, one output per input
	IntoPebble  Result // consume and write every record into Pebble
}

func (e *Env) topic(ctx context.Context, name string, partitions int32) (func(), error) {
	cl, err := kgo.NewClient(e.Opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	_, err = kafka.EnsureTopics(ctx, kadm.NewClient(cl), -1, []kafka.TopicSpec{{Name: name, Partitions: partitions, Configs: map[string]string{"cleanup.policy": "delete"}}})
	return func() { e.deleteTopics("", name) }, err
}

// fill produces n records of 200 bytes with 36-byte keys to topic, and
// returns the produce throughput.
func (e *Env) fill(ctx context.Context, topic string, n int) (Result, error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), e.Opts...), kgo.DefaultProduceTopic(topic), kgo.MaxBufferedRecords(200000))...)
	if err != nil {
		return Result{}, err
	}
	defer cl.Close()
	value := make([]byte, 200)
	_, _ = rand.Read(value)
	var failed atomic.Int64
	start := time.Now()
	for i := 0; i < n; i++ {
		key := fmt.Appendf(nil, "key-%032d", i%100000)
		cl.Produce(ctx, &kgo.Record{Key: key, Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return Result{}, err
	}
	if failed.Load() > 0 {
		return Result{}, fmt.Errorf("%d records failed", failed.Load())
	}
	took := time.Since(start)
	return Result{Name: "baseline: kgo produce (200 B, acks=all, idempotent)", ThroughputPerS: float64(n) / took.Seconds(), Seconds: took.Seconds()}, nil
}

// RunBaselines measures the three baselines with n records each.
func RunBaselines(ctx context.Context, env Env, n int) (Baselines, error) {
	var bl Baselines
	ns := namespace()
	in, out := ns+".in", ns+".out"
	for _, t := range []string{in, out} {
		drop, err := env.topic(ctx, t, env.Partitions)
		if err != nil {
			return bl, err
		}
		defer drop()
	}
	env.progress("baseline: producing %d records", n)
	var err error
	if bl.Produce, err = env.fill(ctx, in, n); err != nil {
		return bl, err
	}
	env.progress("baseline: exactly-once passthrough of %d records", n)
	if bl.Passthrough, err = passthrough(ctx, env, in, out, n); err != nil {
		return bl, err
	}
	env.progress("baseline: consume %d records into Pebble", n)
	if bl.IntoPebble, err = intoPebble(ctx, env, in, n); err != nil {
		return bl, err
	}
	return bl, nil
}

func passthrough(ctx context.Context, env Env, in, out string, n int) (Result, error) {
	sess, err := kgo.NewGroupTransactSession(append(append([]kgo.Opt(nil), env.Opts...),
		kgo.ConsumerGroup(in+".passthrough"), kgo.ConsumeTopics(in), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.TransactionalID(in+".passthrough"), kgo.DefaultProduceTopic(out),
	)...)
	if err != nil {
		return Result{}, err
	}
	defer sess.Close()
	start := time.Now()
	done := 0
	for done < n {
		fs := sess.PollRecords(ctx, 2000)
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			return Result{}, err
		}
		for _, r := range recs {
			sess.Produce(ctx, &kgo.Record{Key: r.Key, Value: r.Value}, nil)
		}
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			return Result{}, err
		}
		if committed {
			done += len(recs)
		}
	}
	took := time.Since(start)
	return Result{Name: "baseline: kgo exactly-once passthrough", ThroughputPerS: float64(n) / took.Seconds(), Seconds: took.Seconds()}, nil
}

func intoPebble(ctx context.Context, env Env, in string, n int) (Result, error) {
	dir, err := os.MkdirTemp("", "strata-bench-pebble")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		return Result{}, err
	}
	defer db.Close()
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), env.Opts...), kgo.ConsumeTopics(in), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return Result{}, err
	}
	defer cl.Close()
	start := time.Now()
	done := 0
	for done < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		b := db.NewBatch()
		fs.EachRecord(func(r *kgo.Record) {
			k := binary.BigEndian.AppendUint64(append([]byte(nil), r.Key...), uint64(r.Offset))
			_ = b.Set(k, r.Value, nil)
			done++
			if b.Len() > 8<<20 { // keep batches ordinary, as the processor does
				_ = db.Commit(b)
				b = db.NewBatch()
			}
		})
		if err := db.Commit(b); err != nil {
			return Result{}, err
		}
	}
	took := time.Since(start)
	return Result{Name: "baseline: kgo consume into Pebble", ThroughputPerS: float64(n) / took.Seconds(), Seconds: took.Seconds()}, nil
}
