package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testScaleOutWithAStoppedInstance: three instances share the command
// partitions; clients send deposits to any of them, retrying with the same
// command ID on errors; one instance is stopped mid-load and started again.
// Afterwards every acknowledged command has its event exactly once, versions
// are gapless, and every instance serves the state a replay gives.
func testScaleOutWithAStoppedInstance(t *testing.T, b *broker) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	nodes := make([]*server, 3)
	var mu sync.Mutex // guards nodes
	for i := range nodes {
		nodes[i] = startNode(t, b, nodeOpts{ns: ns, dataDir: dirs[i], commandTimeout: 20 * time.Second})
	}
	url := func(i int) string {
		mu.Lock()
		defer mu.Unlock()
		return nodes[i].url
	}
	const accounts = 12
	for a := range accounts {
		nodes[a%3].send(t, fmt.Sprintf("acc-%d", a), "OpenAccount", `{"owner":"o","initial_balance":0}`)
	}

	type ack struct {
		account string
		amount  int
	}
	var ackMu sync.Mutex
	acked := map[string]ack{}
	post := func(base, account, body string) (int, map[string]any, error) {
		resp, err := http.Post(base+"/v1/commands/account/"+account, "application/json", strings.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		return resp.StatusCode, out, nil
	}
	const clients, perClient = 3, 40
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for i := range perClient {
				account := fmt.Sprintf("acc-%d", rng.IntN(accounts))
				amount := 1 + rng.IntN(100)
				id := fmt.Sprintf("c%d-%d", c, i)
				body := fmt.Sprintf(`{"type":"Deposit","data":{"amount":%d},"command_id":%q}`, amount, id)
				deadline := time.Now().Add(60 * time.Second)
				for try := 0; ; try++ {
					code, out, err := post(url((c+try)%3), account, body)
					if err == nil && code == 200 {
						ackMu.Lock()
						acked[id] = ack{account, amount}
						ackMu.Unlock()
						break
					}
					if time.Now().After(deadline) {
						errs <- fmt.Errorf("command %s never acknowledged: %d %v %v", id, code, out, err)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	// Stop instance 2 mid-load, then start it again on its data directory.
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	victim := nodes[2]
	mu.Unlock()
	victim.stop(t)
	time.Sleep(time.Second)
	restarted := startNode(t, b, nodeOpts{ns: ns, dataDir: dirs[2], commandTimeout: 20 * time.Second})
	mu.Lock()
	nodes[2] = restarted
	mu.Unlock()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	if len(acked) != clients*perClient {
		t.Fatalf("%d commands acknowledged, want %d", len(acked), clients*perClient)
	}

	// The events topic: each acknowledged command exactly once, versions
	// gapless per aggregate.
	events := readAll(t, b, names.Events("account"), kgo.ReadCommitted())
	seen := map[string]int{}
	versions := map[string]int{}
	balance := map[string]int{}
	for _, e := range events {
		id := string(e.Key)
		v, _ := strconv.Atoi(header(e, "strata-aggregate-version"))
		if v != versions[id]+1 {
			t.Errorf("%s: version %d follows %d", id, v, versions[id])
		}
		versions[id] = v
		if cmd := header(e, "strata-command-id"); header(e, "strata-event-type") == "MoneyDeposited" {
			seen[cmd]++
			balance[id] += acked[cmd].amount
		}
	}
	for id, a := range acked {
		if seen[id] != 1 {
			t.Errorf("command %s (%s +%d) has %d events, want exactly 1", id, a.account, a.amount, seen[id])
		}
	}
	if len(seen) != len(acked) {
		t.Errorf("%d deposits on the topic, %d acknowledged", len(seen), len(acked))
	}
	// Every instance serves the replayed state.
	for i := range nodes {
		for a := range accounts {
			id := fmt.Sprintf("acc-%d", a)
			var agg accountState
			ok := false
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if code := nodes[i].do(t, "GET", "/v1/aggregates/account/"+id, "", &agg); code == 200 && agg.Version == versions[id] {
					ok = true
					break
				}
			}
			if !ok || agg.State.Balance != balance[id] {
				t.Errorf("instance %d serves %s as %+v, replay gives version %d balance %d", i, id, agg, versions[id], balance[id])
			}
		}
	}
}
