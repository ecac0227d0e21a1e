package e2e

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/processor"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// eventTypes lists an events topic's committed events as TYPE@VERSION,
// space-separated, in topic order.
func eventTypes(t *testing.T, b *broker, topic string) string {
	t.Helper()
	var got []string
	for _, e := range readAll(t, b, topic, kgo.ReadCommitted()) {
		got = append(got, header(e, "strata-event-type")+"@"+header(e, "strata-aggregate-version"))
	}
	return strings.Join(got, " ")
}

// readAll reads every record of topic up to its end as the isolation
// level sees it (for read_committed, the last stable offsets once every
// transaction below the high watermarks is decided; the high watermarks
// otherwise), as of the call. It reads to those offsets rather
// than until a quiet moment: a fresh client's first fetch can take over a
// second on a loaded machine, and a quiet window would take that for the
// end of the topic.
func readAll(t *testing.T, b *broker, topic string, iso kgo.IsolationLevel) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addrs...), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(iso),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.KeepControlRecords()) // the ends count the transaction markers
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := contextWithTimeout(30 * time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("the ends of %s: %v", topic, err)
	}
	ends := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			ends[o.Partition] = o.Offset
		} else if !errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
			t.Errorf("the end of %s/%d: %v", topic, o.Partition, o.Err)
		}
	})
	if iso == kgo.ReadCommitted() && len(ends) > 0 {
		// Not the last stable offsets alone: the markers of a
		// transaction just acknowledged can still be on their way.
		stable, err := kafka.StableEnds(ctx, adm, topic, nil, nil)
		if err != nil {
			t.Fatalf("the ends of %s: %v", topic, err)
		}
		maps.Copy(ends, stable)
	}
	next := map[int32]int64{}
	reached := func() bool {
		for part, end := range ends {
			if next[part] < end {
				return false
			}
		}
		return true
	}
	var got []*kgo.Record
	for !reached() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: at %v of %v after 30s", topic, next, ends)
		}
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				got = append(got, r)
			}
		})
	}
	return got
}

// testAbortedTransactionsAreInvisible: when a transaction aborts after its
// events reached the broker, read_committed consumers (the views, other
// services) never see those events; the retried batch appends them once.
func testAbortedTransactionsAreInvisible(t *testing.T, b *broker) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	var aborts atomic.Int32
	s := startNodeWith(t, b, nodeOpts{ns: ns, dataDir: t.TempDir()}, processor.Faults{
		BeforeCommit: func(int) error {
			if aborts.Add(1) <= 2 {
				return errors.New("abort the first two transactions")
			}
			return nil
		},
	})
	code, res := s.send(t, "acc-x", "OpenAccount", `{"owner":"xi","initial_balance":5}`)
	if code != 200 || num(res["version"]) != 1 {
		t.Fatalf("open after two aborted attempts: %d %v", code, res)
	}
	if aborts.Load() < 3 {
		t.Fatalf("the fault hook ran %d times, want 3", aborts.Load())
	}
	committed := readAll(t, b, names.Events("account"), kgo.ReadCommitted())
	uncommitted := readAll(t, b, names.Events("account"), kgo.ReadUncommitted())
	if len(committed) != 1 {
		t.Fatalf("read_committed sees %d events, want exactly 1", len(committed))
	}
	// The aborted attempts did write to the log: read_uncommitted sees them.
	if len(uncommitted) != 3 {
		t.Fatalf("read_uncommitted sees %d events, want 3 (2 aborted + 1 committed)", len(uncommitted))
	}
	var row accountRow
	if code := s.do(t, "GET", "/v1/views/accounts/acc-x?position="+res["position"].(string), "", &row); code != 200 || row.Version != 1 || row.Balance != 5 {
		t.Fatalf("view: %d %+v", code, row)
	}
}

// testCrashAfterCommitBeforePebble: the processor dies after Kafka
// committed a batch and before Pebble recorded it. After a restart on the
// same data directory, the state equals a replay of the events topic, and
// no command was applied twice.
func testCrashAfterCommitBeforePebble(t *testing.T, b *broker) {
	ns, dir := namespace(), t.TempDir()
	names := kafka.Names{Namespace: ns}
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: dir})
	s.send(t, "acc-c", "OpenAccount", `{"owner":"cy","initial_balance":100}`)
	s.stop(t)

	var crashed atomic.Bool
	s = startNodeWith(t, b, nodeOpts{ns: ns, dataDir: dir, commandTimeout: 3 * time.Second}, processor.Faults{
		AfterCommit: func(int) error {
			crashed.Store(true)
			return errors.New("crash between the Kafka commit and the Pebble write")
		},
	})
	// The result is committed with the events, but the node dies right
	// after: the client may or may not hear it (200 or 504).
	withdraw := `{"type":"Withdraw","data":{"amount":30},"command_id":"w-1"}`
	var res map[string]any
	if code := s.do(t, "POST", "/v1/commands/account/acc-c", withdraw, &res); code != 200 && code != 504 {
		t.Fatalf("withdraw: %d %v", code, res)
	}
	if err := s.wait(t); err == nil || !strings.Contains(err.Error(), "injected fault") || !crashed.Load() {
		t.Fatalf("node should have stopped on the injected crash, got %v", err)
	}

	s = startNode(t, b, nodeOpts{ns: ns, dataDir: dir})
	// Resending the command learns its outcome without applying it again.
	if code := s.do(t, "POST", "/v1/commands/account/acc-c", withdraw, &res); code != 200 || num(res["version"]) != 2 {
		t.Fatalf("withdraw resent after the crash: %d %v, want its original result (version 2)", code, res)
	}
	var agg accountState
	if code := s.do(t, "GET", "/v1/aggregates/account/acc-c?position="+res["position"].(string), "", &agg); code != 200 || agg.Version != 2 || agg.State.Balance != 70 {
		t.Fatalf("state after the crash: %d %+v, want version 2, balance 70", code, agg)
	}
	// The withdraw is not applied again, and the next command continues
	// the version sequence.
	code, res := s.send(t, "acc-c", "Withdraw", `{"amount":70}`)
	if code != 200 || num(res["version"]) != 3 {
		t.Fatalf("next withdraw: %d %v", code, res)
	}
	got := eventTypes(t, b, names.Events("account"))
	if want := "AccountOpened@1 MoneyWithdrawn@2 MoneyWithdrawn@3"; got != want {
		t.Fatalf("events topic = %v, want %s", got, want)
	}
	if code, res := s.send(t, "acc-c", "Withdraw", `{"amount":1}`); code != 422 || !strings.Contains(fmt.Sprint(res["error"]), "balance 0") {
		t.Fatalf("overdraft after the crash: %d %v", code, res)
	}
}

// testCatchUpWaitsForTheBrokers: a catch-up that fails because Kafka does
// not answer (a broker restarting, a cluster down for longer than a
// request's retries) is retried; the node does not exit, /readyz says the
// partitions catch up, and once an attempt succeeds the commands flow with
// nothing lost.
func testCatchUpWaitsForTheBrokers(t *testing.T, b *broker) {
	ns, dir := namespace(), t.TempDir()
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: dir})
	s.send(t, "acc-w", "OpenAccount", `{"owner":"wu","initial_balance":10}`)
	s.stop(t)

	var attempts atomic.Int32
	release := make(chan struct{})
	s = startNodeWith(t, b, nodeOpts{ns: ns, dataDir: dir}, processor.Faults{
		BeforeCatchUp: func(int) error {
			attempts.Add(1)
			select {
			case <-release:
				return nil
			default:
				return errors.New("the brokers are away")
			}
		},
	})
	var checks map[string]string
	eventually(t, 20*time.Second, func() bool {
		var code int
		code, checks = s.readyz(t)
		return attempts.Load() >= 2 && code == 503 && strings.Contains(checks["processor account"], "catching up")
	}, func() string {
		return fmt.Sprintf("after %d failed attempts /readyz says %v, want the account partitions catching up", attempts.Load(), checks)
	})
	select {
	case err := <-s.done:
		s.cancel, s.done = nil, nil
		t.Fatalf("the node stopped while Kafka was away: %v", err)
	default:
	}
	close(release)
	code, res := s.send(t, "acc-w", "Deposit", `{"amount":5}`)
	if code != 200 || num(res["version"]) != 2 {
		t.Fatalf("deposit once the catch-up succeeded: %d %v (want version 2: the state caught up, nothing lost)", code, res)
	}
}
