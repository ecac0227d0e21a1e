package e2e

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/projections"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestBrokerRequestFaults makes the embedded broker fail the write path's
// requests at its dangerous points, once each: the produce of the events,
// the produce of the results (refused, or answered so that the Kafka client
// re-initializes its producer ID mid-transaction), the commit of the
// consumed offsets in the transaction, and the end of the transaction.
// Each time the command is still applied exactly once, and answered.
// (Request control is the embedded broker's: this test does not run
// against other brokers.)
func TestBrokerRequestFaults(t *testing.T) {
	for _, tc := range []requestFault{
		{"transactional produce drops the connection", int16(kmsg.Produce), func(ns string, req kmsg.Request) (kmsg.Response, error, bool) {
			// Produce v13 names topics by ID: match the transaction.
			if id := req.(*kmsg.ProduceRequest).TransactionID; id != nil && strings.HasPrefix(*id, ns+".") {
				return nil, errors.New("injected: connection dropped"), true
			}
			return nil, nil, false
		}, nil},
		{"offset commit in the transaction: illegal generation", int16(kmsg.TxnOffsetCommit), func(ns string, req kmsg.Request) (kmsg.Response, error, bool) {
			r := req.(*kmsg.TxnOffsetCommitRequest)
			if !strings.HasPrefix(r.Group, ns+".") {
				return nil, nil, false
			}
			resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
			for _, tp := range r.Topics {
				rt := kmsg.NewTxnOffsetCommitResponseTopic()
				rt.Topic = tp.Topic
				for _, p := range tp.Partitions {
					rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
					rp.Partition = p.Partition
					rp.ErrorCode = kerr.IllegalGeneration.Code
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			return resp, nil, true
		}, nil},
		{"end of the transaction: unknown server error", int16(kmsg.EndTxn), func(ns string, req kmsg.Request) (kmsg.Response, error, bool) {
			r := req.(*kmsg.EndTxnRequest)
			if !r.Commit || !strings.HasPrefix(r.TransactionalID, ns+".") {
				return nil, nil, false
			}
			resp := r.ResponseKind().(*kmsg.EndTxnResponse)
			resp.ErrorCode = kerr.UnknownServerError.Code
			return resp, nil, true
		}, nil},
		// franz-go's End commits the records that were acknowledged even
		// when one of the transaction failed: the result refused here
		// would have been left out, with the event and the offsets
		// committed and the client never answered.
		resultsFault("a result's produce is refused (INVALID_RECORD)", func(rp *kmsg.ProduceResponseTopicPartition) {
			rp.ErrorCode = kerr.InvalidRecord.Code
		}),
		// This answer makes franz-go re-initialize its producer ID in the
		// middle of the transaction and retry the batch: the
		// InitProducerID aborts the event written before, and the result
		// commits, with the offsets, in a new transaction that End
		// reports as committed.
		resultsFault("a result's produce makes the client reload its producer ID mid-transaction", func(rp *kmsg.ProduceResponseTopicPartition) {
			rp.ErrorCode = kerr.OutOfOrderSequenceNumber.Code
			rp.LogStartOffset = 1 << 40 // past every offset acknowledged
		}),
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t)
			if b.cluster == nil {
				t.Skip("request faults need the embedded broker")
			}
			ns := namespace()
			names := kafka.Names{Namespace: ns}
			s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir(), commandTimeout: 30 * time.Second})
			s.send(t, "acc-f", "OpenAccount", `{"owner":"fay","initial_balance":10}`)
			if tc.results != nil {
				tc.results(topicID(t, b, names.Results("account")))
			}
			var hit atomic.Int32
			b.cluster.ControlKey(tc.key, func(req kmsg.Request) (kmsg.Response, error, bool) {
				if hit.Load() > 0 {
					return nil, nil, false
				}
				resp, err, handled := tc.fault(ns, req)
				if handled {
					hit.Add(1)
				} else {
					b.cluster.KeepControl()
				}
				return resp, err, handled
			})
			code, res := s.send(t, "acc-f", "Deposit", `{"amount":5}`)
			if hit.Load() != 1 {
				t.Fatalf("the fault was injected %d times, want 1", hit.Load())
			}
			if code != 200 || num(res["version"]) != 2 {
				t.Fatalf("deposit through the fault: %d %v", code, res)
			}
			got := eventTypes(t, b, names.Events("account"))
			if got != "AccountOpened@1 MoneyDeposited@2" {
				t.Fatalf("events = %v, want each exactly once", got)
			}
			var agg accountState
			if code := s.do(t, "GET", "/v1/aggregates/account/acc-f?position="+res["position"].(string), "", &agg); code != 200 || agg.State.Balance != 15 {
				t.Fatalf("state: %d %+v", code, agg)
			}
		})
	}
}

// requestFault is a case of TestBrokerRequestFaults.
type requestFault struct {
	name string
	key  int16
	// fault answers the request, or returns handled=false to let it
	// through.
	fault func(ns string, req kmsg.Request) (kmsg.Response, error, bool)
	// results, when set, is given the ID of the results topic before the
	// fault is armed.
	results func(id [16]byte)
}

// resultsFault is a case of TestBrokerRequestFaults: the transactional
// produce of the results is answered with answer for each partition.
func resultsFault(name string, answer func(*kmsg.ProduceResponseTopicPartition)) requestFault {
	var results atomic.Value
	results.Store([16]byte{})
	return requestFault{name, int16(kmsg.Produce), func(ns string, req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.ProduceRequest)
		if r.TransactionID == nil || !strings.HasPrefix(*r.TransactionID, ns+".") || len(r.Topics) == 0 {
			return nil, nil, false
		}
		id := results.Load().([16]byte)
		for _, t := range r.Topics {
			// Produce v13 names topics by ID, earlier versions by name.
			if t.TopicID != id && t.Topic != (kafka.Names{Namespace: ns}).Results("account") {
				return nil, nil, false
			}
		}
		resp := r.ResponseKind().(*kmsg.ProduceResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				answer(&rp)
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	}, func(id [16]byte) { results.Store(id) }}
}

// topicID returns the ID of topic.
func topicID(t *testing.T, b *broker, topic string) [16]byte {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("describe %s: %v %v", topic, err, td[topic].Err)
	}
	return td[topic].ID
}

// TestViewPublishedOnceElected: an instance elected to publish a view
// publishes it whole at once, not at the view's next change. Until it was,
// a view that stayed quiet after its instance was elected stayed off its
// topic (a CI run found it: the election finished after the only event
// was applied).
func TestViewPublishedOnceElected(t *testing.T) {
	b := newBroker(t)
	if b.cluster == nil {
		t.Skip("holding the election needs the embedded broker's request control")
	}
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	election := projections.ElectionTopic(names.View("accounts"))
	var hold atomic.Bool
	var held atomic.Int32
	hold.Store(true)
	b.cluster.ControlKey(int16(kmsg.JoinGroup), func(req kmsg.Request) (kmsg.Response, error, bool) {
		b.cluster.KeepControl()
		r := req.(*kmsg.JoinGroupRequest)
		if r.Group != election || !hold.Load() {
			return nil, nil, false
		}
		held.Add(1)
		resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		return resp, nil, true
	})
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir()})
	code, res := s.send(t, "acc-e", "OpenAccount", `{"owner":"eve","initial_balance":7}`)
	if code != 200 {
		t.Fatalf("open: %d %v", code, res)
	}
	var row accountRow
	if code := s.do(t, "GET", "/v1/views/accounts/acc-e?position="+res["position"].(string), "", &row); code != 200 || row.Balance != 7 {
		t.Fatalf("view: %d %+v", code, row)
	}
	if held.Load() == 0 {
		t.Fatal("the election was not held: no JoinGroup for " + election)
	}
	if recs := readAll(t, b, names.View("accounts"), kgo.ReadCommitted()); len(recs) != 0 {
		t.Fatalf("%d records published before any instance was elected", len(recs))
	}
	hold.Store(false)
	// No further change: the row reaches the topic all the same.
	eventually(t, 20*time.Second, func() bool {
		return byKey(readAll(t, b, names.View("accounts"), kgo.ReadCommitted()), "acc-e") != nil
	}, func() string {
		return "acc-e not published within 20s of the election"
	})
}

// TestEndCommittedButAnsweredWithAnError: the broker commits the
// transaction, and the processor's Kafka client is told otherwise (here
// UNKNOWN_SERVER_ERROR, which franz-go answers by aborting through a
// producer ID reload, then reports "not committed"). The batch is
// committed in Kafka, so it must not be decided a second time, and the
// command is still answered with its one event.
func TestEndCommittedButAnsweredWithAnError(t *testing.T) {
	b := newBroker(t)
	if b.cluster == nil {
		t.Skip("request faults need the embedded broker")
	}
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir(), commandTimeout: 30 * time.Second})
	s.send(t, "acc-u", "OpenAccount", `{"owner":"uma","initial_balance":10}`)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var hit atomic.Int32
	var commitErr atomic.Value
	b.cluster.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.EndTxnRequest)
		if !r.Commit || !strings.HasPrefix(r.TransactionalID, ns+".account.") || !hit.CompareAndSwap(0, 1) {
			b.cluster.KeepControl()
			return nil, nil, false
		}
		// Commit the transaction with the same request from another
		// connection (this control lets it through), then answer the
		// processor's with an error.
		b.cluster.SleepControl(func() {
			ctx, cancel := contextWithTimeout(10 * time.Second)
			defer cancel()
			same := *r
			resp, err := same.RequestWith(ctx, cl)
			if err == nil {
				err = kerr.ErrorForCode(resp.ErrorCode)
			}
			if err != nil {
				commitErr.Store(err.Error())
			}
		})
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.UnknownServerError.Code
		return resp, nil, true
	})
	code, res := s.send(t, "acc-u", "Deposit", `{"amount":5}`)
	if hit.Load() != 1 {
		t.Fatalf("the fault was injected %d times, want 1", hit.Load())
	}
	if e := commitErr.Load(); e != nil {
		t.Fatalf("committing the transaction behind the processor's back: %v", e)
	}
	if code != 200 || num(res["version"]) != 2 {
		t.Fatalf("deposit through the fault: %d %v", code, res)
	}
	// A later command goes through, and nothing was decided twice.
	if code, res := s.send(t, "acc-u", "Deposit", `{"amount":1}`); code != 200 || num(res["version"]) != 3 {
		t.Fatalf("the next deposit: %d %v", code, res)
	}
	got := eventTypes(t, b, names.Events("account"))
	if got != "AccountOpened@1 MoneyDeposited@2 MoneyDeposited@3" {
		t.Fatalf("events = %v, want each exactly once", got)
	}
	results := readAll(t, b, names.Results("account"), kgo.ReadCommitted())
	if len(results) != 3 {
		t.Errorf("%d results, want 3 (one per command record)", len(results))
	}
	var agg accountState
	if code := s.do(t, "GET", "/v1/aggregates/account/acc-u", "", &agg); code != 200 || agg.State.Balance != 16 {
		t.Fatalf("state: %d %+v", code, agg)
	}
	if n := s.scrape(t)[series("strata_transaction_aborts_total", "aggregate", "account", "reason", "unconfirmed")]; n != 1 {
		t.Errorf("%v transactions counted as unconfirmed, want 1", n)
	}
}
