package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// rewindGroup commits offset 0 for every partition of the account
// processor group's commands topic, as an operator resetting the group
// would, once the group is empty.
func rewindGroup(t *testing.T, b *broker, names kafka.Names) {
	t.Helper()
	adm := kadm.NewClient(kafkaClient(t, b))
	var offs kadm.Offsets
	for p := range int32(4) {
		offs.Add(kadm.Offset{Topic: names.Commands("account"), Partition: p, At: 0, LeaderEpoch: -1})
	}
	var last error
	eventually(t, 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := adm.CommitOffsets(ctx, names.ProcessorGroup("account"), offs)
		if err == nil {
			err = resp.Error()
		}
		last = err
		return err == nil
	}, func() string { return fmt.Sprintf("rewinding the processor group's offsets: %v", last) })
}

// testRedeliveredCommandsAreNotDecidedTwice: command records consumed
// again because the group's committed offset went back (here reset by
// hand, as an operator would) get no second result, whether the node
// remembers deciding them (same data directory) or learns it from the
// results topic (an empty one); the redeliveries are counted.
func testRedeliveredCommandsAreNotDecidedTwice(t *testing.T, b *broker) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	keys := keysByPartition("acc-rd")
	cl := kafkaClient(t, b)
	// send produces one command to each partition and returns their IDs.
	round := 0
	send := func(typ, data string) []string {
		round++
		var ids []string
		var recs []*kgo.Record
		for p, key := range keys {
			id := fmt.Sprintf("rd-%d-%d", round, p)
			ids = append(ids, id)
			recs = append(recs, &kgo.Record{Topic: names.Commands("account"), Partition: p, Key: []byte(key), Value: []byte(data),
				Headers: hdrs("strata-command-type", typ, "strata-command-id", id)})
		}
		produce(t, cl, recs...)
		return ids
	}
	// results waits for the result of each of ids and returns how many
	// results each command ID has.
	results := func(ids []string) map[string]int {
		rs := readUntil(t, b, names.Results("account"), func(rs []*kgo.Record) bool {
			for _, id := range ids {
				if byKey(rs, id) == nil {
					return false
				}
			}
			return true
		})
		n := map[string]int{}
		for _, r := range rs {
			n[string(r.Key)]++
		}
		return n
	}
	once := func(n map[string]int, rounds int) {
		t.Helper()
		if want := rounds * len(keys); len(n) != want {
			t.Errorf("results of %d command IDs, want %d: %v", len(n), want, n)
		}
		for id, c := range n {
			if c != 1 {
				t.Errorf("command %s has %d results, want 1", id, c)
			}
		}
	}
	// redelivered waits until the node counts want redeliveries: the
	// count follows the commit that a result being readable proves.
	redelivered := func(s *server, want float64) {
		t.Helper()
		var n float64
		eventually(t, 5*time.Second, func() bool {
			n = s.scrape(t)[series("strata_command_redeliveries_total", "aggregate", "account")]
			return n == want
		}, func() string { return fmt.Sprintf("%v redeliveries counted, want %v", n, want) })
	}

	dir := t.TempDir()
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: dir})
	send("OpenAccount", `{"owner":"rd","initial_balance":10}`)
	send("Deposit", `{"amount":5}`)
	once(results(send("Deposit", `{"amount":1}`)), 3)
	redelivered(s, 0)
	s.stop(t)

	// The same data directory: the node's own checkpoint says the 12
	// records were decided.
	rewindGroup(t, b, names)
	s = startNode(t, b, nodeOpts{ns: ns, dataDir: dir})
	once(results(send("Withdraw", `{"amount":16}`)), 4)
	redelivered(s, 12) // the 12 records consumed again
	s.wantAccount(t, keys[0], 4, 0)
	s.stop(t)

	// An empty data directory: the results topic says which records its
	// results answer.
	rewindGroup(t, b, names)
	s = startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir()})
	once(results(send("Deposit", `{"amount":2}`)), 5)
	redelivered(s, 16)
	s.wantAccount(t, keys[3], 5, 2)
}

// wantAccount waits until the node serves account id at version with
// balance; a later version fails at once.
func (s *server) wantAccount(t *testing.T, id string, version, balance int) {
	t.Helper()
	var agg accountState
	var code int
	eventually(t, 10*time.Second, func() bool {
		agg = accountState{}
		code = s.do(t, "GET", "/v1/aggregates/account/"+id, "", &agg)
		if agg.Version > version {
			t.Fatalf("%s at version %d, want %d: a command was applied twice", id, agg.Version, version)
		}
		return code == 200 && agg.Version == version
	}, func() string { return fmt.Sprintf("%s: %d %+v, want version %d", id, code, agg, version) })
	if agg.State.Balance != balance {
		t.Errorf("%s: balance %d, want %d", id, agg.State.Balance, balance)
	}
}

// testResendInTheSameBatch: records of one command ID decided in the same
// transaction (a client resending before the first was answered) each get
// a result naming their own record, and all say what the first says,
// position included; so does a later resend over HTTP.
func testResendInTheSameBatch(t *testing.T, b *broker) {
	ns, dir := namespace(), t.TempDir()
	names := kafka.Names{Namespace: ns}
	const key, id = "acc-sb", "sb-dep"
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: dir})
	if code, res := s.send(t, key, "OpenAccount", `{"owner":"sb","initial_balance":1}`); code != 200 {
		t.Fatalf("open: %d %v", code, res)
	}
	s.stop(t)
	// Written while no node runs, the three records are consumed in one
	// poll and decided in one transaction.
	part := kafka.PartitionFor([]byte(key), 4)
	var recs []*kgo.Record
	for range 3 {
		recs = append(recs, &kgo.Record{Topic: names.Commands("account"), Partition: part, Key: []byte(key), Value: []byte(`{"amount":5}`),
			Headers: hdrs("strata-command-type", "Deposit", "strata-command-id", id)})
	}
	produce(t, kafkaClient(t, b), recs...)
	s = startNode(t, b, nodeOpts{ns: ns, dataDir: dir})
	rs := readUntil(t, b, names.Results("account"), func(rs []*kgo.Record) bool {
		n := 0
		for _, r := range rs {
			if string(r.Key) == id {
				n++
			}
		}
		return n >= 3
	})
	var first string
	var answered []string
	for _, r := range rs {
		if string(r.Key) != id {
			continue
		}
		answered = append(answered, header(r, kafka.HeaderCommandOffset))
		var res map[string]any
		if err := json.Unmarshal(r.Value, &res); err != nil {
			t.Fatalf("result %s: %v", r.Value, err)
		}
		if res["status"] != "accepted" || num(res["version"]) != 2 || res["position"] == nil || res["position"] == "" {
			t.Errorf("result %s: want accepted at version 2 with the position of its event", r.Value)
		}
		if first == "" {
			first = string(r.Value)
		} else if string(r.Value) != first {
			t.Errorf("a resend's result differs from the first:\n%s\n%s", r.Value, first)
		}
	}
	var want []string
	for _, r := range recs {
		want = append(want, strconv.FormatInt(r.Offset, 10))
	}
	if !slices.Equal(answered, want) {
		t.Errorf("results answer command records %v, want %v", answered, want)
	}
	var was, again map[string]any
	if err := json.Unmarshal([]byte(first), &was); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"type":"Deposit","data":{"amount":5},"command_id":%q}`, id)
	code := s.do(t, "POST", "/v1/commands/account/"+key, body, &again)
	for _, k := range []string{"status", "version", "position", "events"} {
		if mustJSON(t, again[k]) != mustJSON(t, was[k]) {
			t.Errorf("a resend over HTTP answered %d with %s %s, want the first result's %s", code, k, mustJSON(t, again[k]), mustJSON(t, was[k]))
		}
	}
	s.wantAccount(t, key, 2, 6)
}
