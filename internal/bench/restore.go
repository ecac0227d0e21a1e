package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/node"
	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

// RestoreConfig sizes the restore scenario.
type RestoreConfig struct {
	Aggregates, Events int
	// SnapshotEvery as the history was written: snapshots exist at each
	// multiple of it.
	SnapshotEvery int
}

// Restore writes a history of accounts (an opening and deposits), with
// snapshots every SnapshotEvery events, to fresh topics, then starts a
// node with an empty data directory and measures how long it takes until
// its state reflects every event.
func Restore(ctx context.Context, env Env, rc RestoreConfig) (Result, error) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	res := Result{Name: fmt.Sprintf("restore (snapshot every %d)", rc.SnapshotEvery)}
	dropTopics, err := env.accountTopics(ctx, ns)
	if err != nil {
		return res, err
	}
	defer dropTopics()

	t0 := time.Now()
	end, err := writeHistory(ctx, env, names, rc)
	if err != nil {
		return res, err
	}
	env.progress("wrote %d events and their snapshots for %d aggregates in %s", rc.Events, rc.Aggregates, time.Since(t0).Round(time.Millisecond))

	start := time.Now()
	n, err := env.startNode(ctx, ns, node.Config{SnapshotEvery: rc.SnapshotEvery})
	if err != nil {
		return res, err
	}
	url := n.url
	// Caught up when the state applied the last event of every partition.
	tok := end.Token()
	last := time.Now()
	for {
		resp, err := http.Get(url + "/v1/aggregates/account/acc-0?position=" + tok)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if time.Since(last) > 2*time.Second {
			env.progress("restoring… %s", time.Since(start).Round(time.Second))
			last = time.Now()
		}
	}
	took := time.Since(start)
	if err := n.stop(); err != nil {
		return res, err
	}
	res.Seconds = took.Seconds()
	res.ThroughputPerS = float64(rc.Events) / took.Seconds()
	res.Extra = map[string]any{"aggregates": rc.Aggregates, "events": rc.Events, "snapshot_every": rc.SnapshotEvery}
	return res, nil
}

// writeHistory produces the events (and snapshots) of rc and returns the
// position of the last event of each partition.
func writeHistory(ctx context.Context, env Env, names kafka.Names, rc RestoreConfig) (position.Position, error) {
	cat := schemas.Default()
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), env.Opts...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(100000))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	perAgg := max(rc.Events/rc.Aggregates, 1)
	opened, err := cat.Encode("account/AccountOpened", account.Opened{Holder: "bench", InitialBalance: 0, Currency: "EUR"})
	if err != nil {
		return nil, err
	}
	deposit, err := cat.Encode("account/MoneyDeposited", account.Deposited{Amount: 1})
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var perr error
	end := position.Position{}
	// Offsets of the events that snapshots reflect, by aggregate and version.
	snapOffset := map[[2]int]int64{}
	events := names.Events(account.Name)
	now := time.Now()
	for a := 0; a < rc.Aggregates; a++ {
		id := "acc-" + strconv.Itoa(a)
		key := []byte(id)
		part := kafka.PartitionFor(key, env.Partitions)
		for v := 1; v <= perAgg; v++ {
			typ, val := "MoneyDeposited", deposit
			if v == 1 {
				typ, val = "AccountOpened", opened
			}
			r := &kgo.Record{Topic: events, Partition: part, Key: key, Value: val, Timestamp: now, Headers: []kgo.RecordHeader{
				{Key: kafka.HeaderEventType, Value: []byte(typ)},
				{Key: kafka.HeaderVersion, Value: strconv.AppendInt(nil, int64(v), 10)},
				{Key: kafka.HeaderCommandID, Value: []byte(id + "-" + strconv.Itoa(v))},
			}}
			snap := rc.SnapshotEvery > 0 && v%rc.SnapshotEvery == 0
			aa, vv := a, v
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					perr = errors.Join(perr, err)
					return
				}
				tp := position.TP{Topic: r.Topic, Partition: r.Partition}
				if r.Offset > end[tp] {
					end[tp] = r.Offset
				}
				if snap {
					snapOffset[[2]int{aa, vv}] = r.Offset
				}
			})
		}
		if a%20000 == 19999 {
			env.progress("writing history… %d of %d aggregates", a+1, rc.Aggregates)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, err
	}
	if perr != nil {
		return nil, perr
	}
	for k, off := range snapOffset {
		id := "acc-" + strconv.Itoa(k[0])
		st, err := cat.Encode("account/state", account.State{Open: true, Owner: "bench", Balance: int64(k[1] - 1), Currency: "EUR"})
		if err != nil {
			return nil, err
		}
		cl.Produce(ctx, &kgo.Record{Topic: names.Snapshots(account.Name), Partition: kafka.PartitionFor([]byte(id), env.Partitions), Key: []byte(id), Value: st,
			Headers: []kgo.RecordHeader{
				{Key: kafka.HeaderVersion, Value: strconv.AppendInt(nil, int64(k[1]), 10)},
				{Key: kafka.HeaderEventsOffset, Value: strconv.AppendInt(nil, off, 10)},
			}}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				perr = errors.Join(perr, err)
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, err
	}
	return end, perr
}
