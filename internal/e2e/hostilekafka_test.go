package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/aggregates/order"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/schemas"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// hostile is a record produced to a commands topic and what must become
// of it: to the DLQ with a reason containing dlq and an invalid result, or
// (dlq empty) processed with a result of status.
type hostile struct {
	name   string
	rec    *kgo.Record
	dlq    string
	status string
}

// producedInOrder produces the records one after the other, so that they
// are on their partition in this order; each gets its offset.
func producedInOrder(t *testing.T, cl *kgo.Client, hs []hostile) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, h := range hs {
		if err := cl.ProduceSync(ctx, h.rec).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", h.name, err)
		}
	}
}

// commandID is the ID the processor gives a record's result: its
// strata-command-id header when it has a valid one, else where it was
// written.
func commandID(r *kgo.Record, valid bool) string {
	if id := header(r, kafka.HeaderCommandID); id != "" && valid {
		return id
	}
	return fmt.Sprintf("%s-%d-%d", r.Topic, r.Partition, r.Offset)
}

// testHostileCommandRecords: records on the commands topics with garbage
// values, unknown and missing headers, unknown schema fingerprints,
// payloads of the wrong kind or aggregate, malformed Avro bodies and bad
// keys each go to the DLQ with the reason in strata-dlq-reason and get an
// invalid result (keyed by their command ID, or where they were written
// when they have none); unknown headers on a good command are ignored; the
// partition keeps flowing: the good commands after them are processed.
func testHostileCommandRecords(t *testing.T, b *broker) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir()})
	if code, res := s.send(t, "acc-k", "OpenAccount", `{"owner":"kim","initial_balance":0}`); code != 200 {
		t.Fatalf("open: %d %v", code, res)
	}
	cat := schemas.Default()
	encode := func(subject string, v any) []byte {
		b, err := cat.Encode(subject, v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	open := encode("account/OpenAccount", account.Open{Owner: "kim", InitialBalance: 5})
	deposit := encode("account/Deposit", account.Deposit{Amount: 4})
	topic := names.Commands("account")
	p := kafka.PartitionFor([]byte("acc-k"), 4)
	rec := func(key string, value []byte, kv ...string) *kgo.Record {
		r := &kgo.Record{Topic: topic, Partition: p, Value: value, Headers: hdrs(kv...)}
		if key != "\x00null" {
			r.Key = []byte(key)
		}
		return r
	}
	const (
		id  = kafka.HeaderCommandID
		typ = kafka.HeaderCommandType
		ct  = kafka.HeaderContentType
		js  = kafka.ContentTypeJSON
	)
	hs := []hostile{
		{"an unknown fingerprint", rec("acc-k", []byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0x02}, id, "h-unknown-fp"), "unknown schema fingerprint 0807060504030201", ""},
		{"an event on the commands topic", rec("acc-k", encode("account/MoneyDeposited", account.Deposited{Amount: 5}), id, "h-event"), "payload is a account/MoneyDeposited, not a command of account", ""},
		{"another aggregate's command", rec("acc-k", encode("order/AddItem", order.AddItem{SKU: "A", Qty: 1}), id, "h-order"), "payload is a order/AddItem, not a command of account", ""},
		{"an Avro body cut short", rec("acc-k", open[:len(open)-2], id, "h-truncated"), "ends inside", ""},
		{"an Avro body with a byte more", rec("acc-k", append(append([]byte(nil), deposit...), 0), id, "h-trailing"), "1 byte(s) after the end of the record", ""},
		{"an Avro string not in UTF-8", rec("acc-k", append(append(append([]byte(nil), open[:10]...), 0x04, 'k', 0xff), open[14:]...), id, "h-latin1"), "a string that is not UTF-8", ""},
		{"a type header the payload belies", rec("acc-k", deposit, id, "h-mismatch", typ, "Withdraw"), `strata-command-type header says "Withdraw" but the payload is a Deposit`, ""},
		{"JSON without a type header", rec("acc-k", []byte(`{"amount":1}`), id, "h-json-no-type", ct, js), "JSON command without a strata-command-type header", ""},
		{"JSON not in UTF-8", rec("acc-k", []byte("{\"owner\":\"\xff\"}"), id, "h-json-utf8", ct, js, typ, "OpenAccount"), "not valid UTF-8", ""},
		{"JSON of the wrong types", rec("acc-k", []byte(`{"amount":"4"}`), id, "h-json-types", ct, js, typ, "Deposit"), "cannot unmarshal string", ""},
		{"JSON nested 100k deep", rec("acc-k", []byte(`{"amount":`+strings.Repeat("[", 100000)+strings.Repeat("]", 100000)+`}`), id, "h-json-deep", ct, js, typ, "Deposit"), "exceeded max depth", ""},
		{"an unknown content type", rec("acc-k", []byte("hello"), id, "h-text", ct, "text/plain", typ, "Deposit"), "not Avro single-object encoding", ""},
		{"an empty value", rec("acc-k", nil, id, "h-empty", typ, "Deposit"), "not Avro single-object encoding: want magic c3 01, got  (0 bytes)", ""},
		{"garbage without any header", rec("acc-k", []byte{0xde, 0xad}), "not Avro single-object encoding", ""},
		{"a command ID with a control character", rec("acc-k", deposit, id, "h-\x01"), "bad strata-command-id header", ""},
		{"a command ID of 300 bytes", rec("acc-k", deposit, id, strings.Repeat("c", 300)), "bad strata-command-id header", ""},
		{"a bad expected version", rec("acc-k", deposit, id, "h-expected", kafka.HeaderExpectedVersion, "three"), `bad strata-expected-version header "three"`, ""},
		{"a null key", rec("\x00null", deposit, id, "h-null-key"), "bad record key (the aggregate ID): id is empty", ""},
		{"an empty key", rec("", deposit, id, "h-empty-key"), "bad record key (the aggregate ID): id is empty", ""},
		{"a key with a slash", rec("acc/k", deposit, id, "h-slash-key"), "bad record key (the aggregate ID)", ""},
		{"a key of 300 bytes", rec(strings.Repeat("k", 300), deposit, id, "h-long-key"), "bad record key (the aggregate ID): id is 300 bytes", ""},
		{"a key not in UTF-8", rec("acc-\xff", deposit, id, "h-utf8-key"), "bad record key (the aggregate ID): id is not valid UTF-8", ""},
		// Accepted, after all of the above.
		{"unknown headers on a good command", rec("acc-k", []byte(`{"amount":2}`), id, "h-good-extra", ct, js, typ, "Deposit", "x-trace-id", "abc", "strata-future-header", "?", "content-encoding", "identity"), "", "accepted"},
		{"an Avro command without a type header", rec("acc-k", deposit, id, "h-good-avro"), "", "accepted"},
		{"a good JSON command", rec("acc-k", []byte(`{"amount":7}`), id, "h-good", ct, js, typ, "Deposit"), "", "accepted"},
	}
	cl := kafkaClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	producedInOrder(t, cl, hs)

	// An order whose items count is MinInt64: hamba/avro alone read it as
	// a slice of negative length, which Evolve then panicked on.
	op := kafka.PartitionFor([]byte("ord-k"), 4)
	create := encode("order/CreateOrder", order.Create{CustomerID: "c"})
	ords := []hostile{
		{"CreateOrder of MinInt64 items", &kgo.Record{Topic: names.Commands("order"), Partition: op, Key: []byte("ord-k"),
			Value: append(create[:12:12], 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00), Headers: hdrs(id, "o-minint")},
			"array block count -9223372036854775808", ""},
		{"a good CreateOrder", &kgo.Record{Topic: names.Commands("order"), Partition: op, Key: []byte("ord-k"),
			Value: encode("order/CreateOrder", order.Create{CustomerID: "cus-1", Items: []order.Item{{SKU: "A", Qty: 1, UnitPrice: 100}}}), Headers: hdrs(id, "o-create")}, "", "accepted"},
		{"a good AddItem", &kgo.Record{Topic: names.Commands("order"), Partition: op, Key: []byte("ord-k"),
			Value: encode("order/AddItem", order.AddItem{SKU: "B", Qty: 2, UnitPrice: 50}), Headers: hdrs(id, "o-add")}, "", "accepted"},
	}
	producedInOrder(t, cl, ords)

	check := func(agg string, hs []hostile) {
		t.Helper()
		wantDLQ := 0
		for _, h := range hs {
			if h.dlq != "" {
				wantDLQ++
			}
		}
		dlq := readUntil(t, b, names.DLQ(agg), func(rs []*kgo.Record) bool { return len(rs) >= wantDLQ })
		reasons := map[string]string{} // by source: topic/partition/offset
		for _, r := range dlq {
			if header(r, kafka.HeaderDLQReason) == "" {
				t.Errorf("DLQ record without a reason: %v", r.Headers)
			}
			reasons[header(r, kafka.HeaderDLQSource)] = header(r, kafka.HeaderDLQReason)
		}
		if len(dlq) != wantDLQ {
			t.Errorf("%s: %d DLQ records, want %d: %v", agg, len(dlq), wantDLQ, reasons)
		}
		ids := map[string]hostile{}
		for _, h := range hs {
			valid := !strings.Contains(h.dlq, "bad strata-command-id")
			ids[commandID(h.rec, valid)] = h
			if h.dlq == "" {
				continue
			}
			source := fmt.Sprintf("%s/%d/%d", h.rec.Topic, h.rec.Partition, h.rec.Offset)
			if why := reasons[source]; !strings.Contains(why, h.dlq) {
				t.Errorf("%s: DLQ reason %q, want it to contain %q", h.name, why, h.dlq)
			}
		}
		results := readUntil(t, b, names.Results(agg), func(rs []*kgo.Record) bool {
			for id := range ids {
				if byKey(rs, id) == nil {
					return false
				}
			}
			return true
		})
		for id, h := range ids {
			var res struct{ Status, Error string }
			if err := json.Unmarshal(byKey(results, id).Value, &res); err != nil {
				t.Fatal(err)
			}
			want := h.status
			if h.dlq != "" {
				want = "invalid"
			}
			if res.Status != want || h.dlq != "" && !strings.Contains(res.Error, h.dlq) {
				t.Errorf("%s: result %s %q, want %s", h.name, res.Status, res.Error, want)
			}
		}
	}
	check("account", hs)
	check("order", ords)
	// The three good deposits, in order, on the partition's state.
	var agg accountState
	eventually(t, 10*time.Second, func() bool {
		return s.do(t, "GET", "/v1/aggregates/account/acc-k", "", &agg) == 200 && agg.Version == 4
	}, func() string { return fmt.Sprintf("acc-k: %+v, want version 4", agg) })
	if agg.State.Balance != 2+4+7 {
		t.Fatalf("acc-k: %+v, want balance 13", agg)
	}
}

// maxRecordValue produces, to topic partition p, the largest value the
// client takes (its default ProducerBatchMaxBytes, under the broker's
// message.max.bytes), and returns the record.
func maxRecordValue(t *testing.T, cl *kgo.Client, r *kgo.Record) *kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for n := 1_000_000; n > 900_000; n -= 50 {
		r.Value = make([]byte, n)
		for i := range r.Value {
			r.Value[i] = 'x'
		}
		err := cl.ProduceSync(ctx, r).FirstErr()
		if err == nil {
			return r
		}
		if !errors.Is(err, kerr.MessageTooLarge) {
			t.Fatal(err)
		}
	}
	t.Fatal("no record of 900 kB was taken")
	return nil
}

// testOversizedCommandRecord: a record on the commands topic as large as
// a client may produce goes to the DLQ with the reason and an invalid
// result, and the partition keeps flowing.
func testOversizedCommandRecord(t *testing.T, b *broker) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir()})
	if code, res := s.send(t, "acc-o", "OpenAccount", `{"owner":"otto","initial_balance":0}`); code != 200 {
		t.Fatalf("open: %d %v", code, res)
	}
	p := kafka.PartitionFor([]byte("acc-o"), 4)
	cl := kafkaClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	big := maxRecordValue(t, cl, &kgo.Record{Topic: names.Commands("account"), Partition: p, Key: []byte("acc-o"),
		Headers: hdrs(kafka.HeaderCommandID, "o-big", kafka.HeaderCommandType, "Deposit")})
	t.Logf("produced a command record of %d bytes", len(big.Value))
	produce(t, cl, &kgo.Record{Topic: names.Commands("account"), Partition: p, Key: []byte("acc-o"), Value: []byte(`{"amount":3}`),
		Headers: hdrs(kafka.HeaderCommandID, "o-after", kafka.HeaderCommandType, "Deposit", kafka.HeaderContentType, kafka.ContentTypeJSON)})

	// Commands of the other partitions go on.
	other := "acc-o2"
	for i := 3; kafka.PartitionFor([]byte(other), 4) == p; i++ {
		other = fmt.Sprintf("acc-o%d", i)
	}
	if code, res := s.send(t, other, "OpenAccount", `{"owner":"olga","initial_balance":1}`); code != 200 {
		t.Errorf("a command on another partition after a record of %d bytes: %d %v", len(big.Value), code, res)
	}
	var agg accountState
	eventually(t, 20*time.Second, func() bool {
		return s.do(t, "GET", "/v1/aggregates/account/acc-o", "", &agg) == 200 && agg.Version == 2
	}, func() string {
		return fmt.Sprintf("the command after a record of %d bytes is not processed: acc-o %+v", len(big.Value), agg)
	})
	dlq := readUntil(t, b, names.DLQ("account"), func(rs []*kgo.Record) bool { return len(rs) >= 1 })
	if why := header(dlq[0], kafka.HeaderDLQReason); header(dlq[0], kafka.HeaderCommandID) != "o-big" || !strings.Contains(why, "not Avro single-object encoding") {
		t.Errorf("DLQ record %q: reason %q", header(dlq[0], kafka.HeaderCommandID), why)
	}
	// The dead-letter copy keeps the start of the value and says how long
	// it was; strata-dlq-source names the original.
	if n := header(dlq[0], kafka.HeaderDLQTruncated); n != fmt.Sprint(len(big.Value)) || len(dlq[0].Value) >= len(big.Value) {
		t.Errorf("DLQ copy: %d bytes, %s %q; want it shortened, naming the original length %d", len(dlq[0].Value), kafka.HeaderDLQTruncated, n, len(big.Value))
	}
	if src := header(dlq[0], kafka.HeaderDLQSource); !strings.HasPrefix(src, fmt.Sprintf("%s/%d/", names.Commands("account"), p)) {
		t.Errorf("DLQ source %q", src)
	}
	results := readUntil(t, b, names.Results("account"), func(rs []*kgo.Record) bool { return byKey(rs, "o-big") != nil })
	if r := byKey(results, "o-big"); !strings.Contains(string(r.Value), `"status":"invalid"`) {
		t.Errorf("result of the large record: %s", r.Value)
	}
}

// eventStatus is what /v1/status says of stopped partitions.
type eventStatus struct {
	Processors []struct {
		Aggregate string
		Failed    map[string]string
	}
	Projections []struct {
		Name   string
		Failed map[string]string
	}
}

// keysByPartition returns an account ID on each of the 4 partitions.
func keysByPartition(prefix string) map[int32]string {
	keys := map[int32]string{}
	for i := 0; len(keys) < 4; i++ {
		id := fmt.Sprintf("%s%d", prefix, i)
		if p := kafka.PartitionFor([]byte(id), 4); keys[p] == "" {
			keys[p] = id
		}
	}
	return keys
}

// waitStopped waits until the account processor and the accounts and
// customers projections report exactly the partitions of want stopped,
// each with a reason containing the partition's substring, and returns the
// status.
func waitStopped(t *testing.T, s *server, events string, want map[int32]string) eventStatus {
	t.Helper()
	var st eventStatus
	matches := func(failed map[string]string, key func(int32) string) bool {
		if len(failed) != len(want) {
			return false
		}
		for p, why := range want {
			if !strings.Contains(failed[key(p)], why) {
				return false
			}
		}
		return true
	}
	eventually(t, 20*time.Second, func() bool {
		st = eventStatus{} // decode afresh: omitted fields would keep old values
		s.do(t, "GET", "/v1/status", "", &st)
		ok := len(st.Processors) > 0 && st.Processors[0].Aggregate == "account" &&
			matches(st.Processors[0].Failed, func(p int32) string { return fmt.Sprint(p) })
		views := 0
		for _, v := range st.Projections {
			switch v.Name {
			case "accounts", "customers":
				views++
				ok = ok && matches(v.Failed, func(p int32) string { return fmt.Sprintf("%s/%d", events, p) })
			case "orders":
				ok = ok && len(v.Failed) == 0
			}
		}
		return ok && views == 2
	}, func() string { return fmt.Sprintf("status does not show partitions %v stopped: %+v", want, st) })
	return st
}

// testHostileEventRecords: records on the events topic that cannot be read
// (garbage, an empty value, a body cut short behind a known fingerprint,
// which hamba/avro alone read with zero values) stop their partition in
// the processor and in each projection of the aggregate, reported with
// the reason in /v1/status; they are never skipped, and the other
// partition goes on.
func testHostileEventRecords(t *testing.T, b *broker) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir()})
	s.stop(t)
	keys := keysByPartition("acc-e")
	opened, err := schemas.Default().Encode("account/AccountOpened", account.Opened{Holder: "eve", InitialBalance: 3, Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	events := names.Events("account")
	ev := func(p int32, value []byte) *kgo.Record {
		return &kgo.Record{Topic: events, Partition: p, Key: []byte(keys[p]), Value: value,
			Headers: hdrs(kafka.HeaderEventType, "AccountOpened", kafka.HeaderVersion, "1")}
	}
	cl := kafkaClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce(t, cl, ev(0, []byte("garbage")), ev(1, nil), ev(2, opened[:len(opened)-3]))
	want := map[int32]string{
		0: "offset 0: strata: not Avro single-object encoding: want magic c3 01, got 67 61 (7 bytes)",
		1: "offset 0: strata: not Avro single-object encoding: want magic c3 01, got  (0 bytes)",
		2: "decode account/AccountOpened.v3.avsc (fingerprint",
	}
	s = startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir(), commandTimeout: 4 * time.Second})
	st := waitStopped(t, s, events, want)
	if why := st.Processors[0].Failed["2"]; !strings.Contains(why, "ends inside") {
		t.Errorf("the body cut short: %q", why)
	}
	// The healthy partition flows, in the processor and in the views.
	code, res := s.send(t, keys[3], "OpenAccount", `{"owner":"gus","initial_balance":1}`)
	if code != 200 {
		t.Fatalf("a command on the healthy partition: %d %v", code, res)
	}
	var row accountRow
	if code := s.do(t, "GET", "/v1/views/accounts/"+keys[3]+"?position="+res["position"].(string), "", &row); code != 200 || row.Balance != 1 {
		t.Fatalf("view of the healthy partition: %d %+v", code, row)
	}
	// Nothing of the stopped partitions was applied.
	for p := range int32(3) {
		if code := s.do(t, "GET", "/v1/views/accounts/"+keys[p], "", nil); code != 404 {
			t.Errorf("partition %d: the view has a row for %s (%d)", p, keys[p], code)
		}
	}
}

// testEventsWithoutAggregateIDOrVersion: an events-topic record with a
// null key (no aggregate ID), or without its strata-aggregate-version
// header, cannot be applied to an aggregate and stops its partition in the
// processor and in the projections, like an unreadable one.
func testEventsWithoutAggregateIDOrVersion(t *testing.T, b *broker) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir()})
	s.stop(t)
	keys := keysByPartition("acc-v")
	opened, err := schemas.Default().Encode("account/AccountOpened", account.Opened{Holder: "vic", InitialBalance: 3, Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	events := names.Events("account")
	cl := kafkaClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce(t, cl,
		&kgo.Record{Topic: events, Partition: 0, Key: nil, Value: opened, Headers: hdrs(kafka.HeaderEventType, "AccountOpened", kafka.HeaderVersion, "1")},
		&kgo.Record{Topic: events, Partition: 1, Key: []byte(keys[1]), Value: opened, Headers: hdrs(kafka.HeaderEventType, "AccountOpened")},
	)
	s = startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir(), commandTimeout: 4 * time.Second})
	waitStopped(t, s, events, map[int32]string{0: "offset 0", 1: "offset 0"})
	if code := s.do(t, "GET", "/v1/views/accounts/"+keys[1], "", nil); code != 404 {
		t.Errorf("the view has a row for %s from an event without a version (%d)", keys[1], code)
	}
}
