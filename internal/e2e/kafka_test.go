package e2e

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

func kafkaClient(t *testing.T, b *broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.addrs...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produce(t *testing.T, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func hdrs(kv ...string) []kgo.RecordHeader {
	var hs []kgo.RecordHeader
	for i := 0; i+1 < len(kv); i += 2 {
		hs = append(hs, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return hs
}

// readUntil consumes topic from the start (read_committed) until have
// returns true for the records seen so far.
func readUntil(t *testing.T, b *broker, topic string, have func([]*kgo.Record) bool) []*kgo.Record {
	t.Helper()
	cl := kafkaClient(t, b, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []*kgo.Record
	for !have(got) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: gave up after 20s with %d records", topic, len(got))
		}
		got = append(got, fs.Records()...)
	}
	return got
}

func byKey(recs []*kgo.Record, key string) *kgo.Record {
	for _, r := range recs {
		if string(r.Key) == key {
			return r
		}
	}
	return nil
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// testCommandOverKafka: a command produced by a plain Kafka client is
// processed like an HTTP one; its result appears on the results topic
// keyed by its command ID.
func testCommandOverKafka(t *testing.T, b *broker) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir()})
	cl := kafkaClient(t, b)
	produce(t, cl,
		&kgo.Record{Topic: names.Commands("account"), Key: []byte("acc-k"), Value: []byte(`{"owner":"kim","initial_balance":70}`),
			Headers: hdrs("strata-command-type", "OpenAccount", "strata-command-id", "k-open", "content-type", "application/json")},
		&kgo.Record{Topic: names.Commands("account"), Key: []byte("acc-k"), Value: []byte(`{"amount":30}`),
			Headers: hdrs("strata-command-type", "Withdraw", "strata-command-id", "k-w1")},
		&kgo.Record{Topic: names.Commands("account"), Key: []byte("acc-k"), Value: []byte(`{"amount":50}`),
			Headers: hdrs("strata-command-type", "Withdraw", "strata-command-id", "k-w2")},
	)
	results := readUntil(t, b, names.Results("account"), func(rs []*kgo.Record) bool {
		return byKey(rs, "k-open") != nil && byKey(rs, "k-w1") != nil && byKey(rs, "k-w2") != nil
	})
	want := map[string]string{"k-open": "accepted 1", "k-w1": "accepted 2", "k-w2": "rejected 2"}
	var lastPosition string
	for id, w := range want {
		var res struct {
			Status   string
			Version  int
			Error    string
			Position string
		}
		if err := json.Unmarshal(byKey(results, id).Value, &res); err != nil {
			t.Fatal(err)
		}
		if got := res.Status + " " + itoa(res.Version); got != w {
			t.Errorf("result of %s = %s (%s), want %s", id, got, res.Error, w)
		}
		if id == "k-w1" {
			lastPosition = res.Position
		}
	}
	// The result is committed to Kafka before the node's state store
	// applies it; the position token makes the read wait for that.
	var agg struct{ State struct{ Balance int } }
	if s.do(t, "GET", "/v1/aggregates/account/acc-k?position="+lastPosition, "", &agg); agg.State.Balance != 40 {
		t.Fatalf("balance = %d, want 40", agg.State.Balance)
	}
	// The events are on the events topic, keyed by the aggregate ID, in
	// Avro single-object encoding, with their headers.
	events := readUntil(t, b, names.Events("account"), func(rs []*kgo.Record) bool { return len(rs) >= 2 })
	if len(events) != 2 {
		t.Fatalf("%d events, want 2", len(events))
	}
	for i, e := range events {
		if string(e.Key) != "acc-k" || e.Value[0] != 0xC3 || e.Value[1] != 0x01 || header(e, "strata-aggregate-version") != itoa(i+1) {
			t.Errorf("event %d: key %q value % x headers %v", i, e.Key, e.Value[:2], e.Headers)
		}
	}
	if header(events[1], "strata-event-type") != "MoneyWithdrawn" || header(events[1], "strata-command-id") != "k-w1" {
		t.Errorf("event 2 headers: %v", events[1].Headers)
	}
}

// testBadRecordsGoToTheDLQ: undecodable commands go to the DLQ with the
// reason and get an invalid result; the partition keeps flowing; a command
// on the wrong partition is forwarded to the right one.
func testBadRecordsGoToTheDLQ(t *testing.T, b *broker) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir()})
	s.send(t, "acc-d", "OpenAccount", `{"owner":"dee","initial_balance":0}`)

	cl := kafkaClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	topic := names.Commands("account")
	p := kafka.PartitionFor([]byte("acc-d"), 4)
	wrong := (p + 1) % 4
	produce(t, cl,
		&kgo.Record{Topic: topic, Partition: p, Key: []byte("acc-d"), Value: []byte(`{"amount":`),
			Headers: hdrs("strata-command-type", "Deposit", "strata-command-id", "bad-json", "content-type", "application/json")},
		&kgo.Record{Topic: topic, Partition: p, Key: []byte("acc-d"), Value: []byte{0xde, 0xad, 0xbe, 0xef},
			Headers: hdrs("strata-command-id", "garbage")},
		&kgo.Record{Topic: topic, Partition: p, Key: []byte("acc-d"), Value: []byte(`{"amount":1}`),
			Headers: hdrs("strata-command-type", "Explode", "strata-command-id", "unknown-type", "content-type", "application/json")},
		&kgo.Record{Topic: topic, Partition: p, Key: nil, Value: []byte(`{"amount":1}`),
			Headers: hdrs("strata-command-type", "Deposit", "strata-command-id", "null-key", "content-type", "application/json")},
		&kgo.Record{Topic: topic, Partition: p, Key: []byte("acc-d"), Value: []byte(`{"amount":7}`),
			Headers: hdrs("strata-command-type", "Deposit", "strata-command-id", "good", "content-type", "application/json")},
		&kgo.Record{Topic: topic, Partition: wrong, Key: []byte("acc-d"), Value: []byte(`{"amount":3}`),
			Headers: hdrs("strata-command-type", "Deposit", "strata-command-id", "misrouted", "content-type", "application/json")},
	)
	dlq := readUntil(t, b, names.DLQ("account"), func(rs []*kgo.Record) bool { return len(rs) >= 4 })
	reasons := map[string]string{}
	for _, r := range dlq {
		reasons[header(r, "strata-command-id")] = header(r, "strata-dlq-reason")
		if header(r, "strata-dlq-source") == "" {
			t.Errorf("DLQ record without source: %v", r.Headers)
		}
	}
	for id, want := range map[string]string{
		"bad-json":     "Deposit data",
		"garbage":      "not Avro single-object encoding",
		"unknown-type": `unknown command type "Explode"`,
		"null-key":     "bad record key",
	} {
		if !strings.Contains(reasons[id], want) {
			t.Errorf("DLQ reason of %s = %q, want it to contain %q", id, reasons[id], want)
		}
	}
	if len(dlq) != 4 {
		t.Errorf("%d DLQ records, want 4", len(dlq))
	}
	results := readUntil(t, b, names.Results("account"), func(rs []*kgo.Record) bool {
		return byKey(rs, "good") != nil && byKey(rs, "misrouted") != nil && byKey(rs, "bad-json") != nil
	})
	for id, want := range map[string]string{"bad-json": `"status":"invalid"`, "good": `"status":"accepted"`, "misrouted": `"status":"accepted"`} {
		if r := byKey(results, id); !strings.Contains(string(r.Value), want) {
			t.Errorf("result of %s = %s, want %s", id, r.Value, want)
		}
	}
	// The forwarded command lands on partition p after the good one, so
	// its position covers both.
	var fwd struct{ Position string }
	if err := json.Unmarshal(byKey(results, "misrouted").Value, &fwd); err != nil {
		t.Fatal(err)
	}
	var agg struct {
		Version int
		State   struct{ Balance int }
	}
	if s.do(t, "GET", "/v1/aggregates/account/acc-d?position="+fwd.Position, "", &agg); agg.State.Balance != 10 || agg.Version != 3 {
		t.Fatalf("after the good and the forwarded deposit: %+v, want balance 10 at version 3", agg)
	}
	// Every event of the aggregate is on its own partition, including the
	// forwarded command's.
	events := readUntil(t, b, names.Events("account"), func(rs []*kgo.Record) bool { return len(rs) >= 3 })
	for _, e := range events {
		if e.Partition != p {
			t.Errorf("event %s v%s on partition %d, want %d", e.Key, header(e, "strata-aggregate-version"), e.Partition, p)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
