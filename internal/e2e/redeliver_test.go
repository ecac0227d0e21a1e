package e2e

import (
	"context"
	"fmt"
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
