package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/aggregates/order"
	"github.com/strata-es/strata/internal/codec"
	"github.com/strata-es/strata/internal/devbroker"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/projections"
	"github.com/strata-es/strata/projections/accounts"
	"github.com/strata-es/strata/projections/orders"
	"github.com/strata-es/strata/schemas"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startServeConfig starts `strata serve --config cfg` (see startServeArgs).
func startServeConfig(t *testing.T, bin, cfg, httpAddr string) *proc {
	t.Helper()
	return startServeArgs(t, bin, []string{"--config", cfg, "--http", httpAddr}, nil)
}

// TestPostgresSinkCrash is the PostgreSQL sink's crash test: `strata
// serve` keeps the orders and accounts views in PostgreSQL while clients
// send commands; it is killed with SIGKILL at random moments several times
// and restarted; PostgreSQL itself is stopped for a while and started again
// when STRATA_TEST_POSTGRES_STOP and _START say how. At the end each table
// equals a recomputation from the events topics (every event decoded and
// folded with the projection's own Apply, in memory), row for row with the
// same versions, and the offsets table equals the topics' ends.
func TestPostgresSinkCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and kills processes")
	}
	url := os.Getenv("STRATA_TEST_POSTGRES")
	if url == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("STRATA_TEST_POSTGRES is not set in CI: compose/sinks-up.sh starts PostgreSQL and prints it")
		}
		t.Skip("STRATA_TEST_POSTGRES is not set: start PostgreSQL with compose/sinks-up.sh (it prints the variable)")
	}
	bin, err := buildStrata()
	if err != nil {
		t.Fatal(err)
	}
	c, brokers, err := devbroker.Start(devbroker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var rb [5]byte
	rand.Read(rb[:])
	schema := "crash_" + hex.EncodeToString(rb[:])
	ctx := context.Background()
	conn := func() *pgx.Conn {
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			cn, err := pgx.Connect(ctx, url)
			if err == nil {
				return cn
			}
			if time.Now().After(deadline) {
				t.Fatalf("connect to PostgreSQL: %v", err)
			}
		}
	}
	t.Cleanup(func() {
		cn := conn()
		cn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		cn.Close(ctx)
	})
	ns := "sinkcrash"
	cfgPath := writeFile(t, fmt.Sprintf("brokers: [%q]\nnamespace: %s\npartitions: 4\ndata: %s\nsinks:\n  postgres: {url_env: STRATA_TEST_POSTGRES, schema: %s, views: [orders, accounts]}\n",
		brokers, ns, t.TempDir(), schema))
	addr := freeAddr(t)
	base := "http://" + addr
	p := startServeConfig(t, bin, cfgPath, addr)

	const nAccounts, nOrders = 6, 12
	load, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var sentMu sync.Mutex
	sent := 0
	send := func(path, body string) {
		for load.Err() == nil {
			resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 || resp.StatusCode == 422 || resp.StatusCode == 409 {
					sentMu.Lock()
					sent++
					sentMu.Unlock()
					return
				}
			}
			time.Sleep(30 * time.Millisecond)
		}
	}
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(uint64(w), 7))
			for i := 0; load.Err() == nil; i++ {
				cmdID := fmt.Sprintf("w%d-%d", w, i)
				if w == 0 {
					a := fmt.Sprintf("acc-%d", rng.IntN(nAccounts))
					typ, data := "Deposit", fmt.Sprintf(`{"amount":%d}`, 1+rng.IntN(50))
					if i < nAccounts {
						a, typ, data = fmt.Sprintf("acc-%d", i), "OpenAccount", `{"owner":"o","initial_balance":0}`
					}
					send("/v1/commands/account/"+a, fmt.Sprintf(`{"type":%q,"data":%s,"command_id":%q}`, typ, data, cmdID))
					continue
				}
				o := fmt.Sprintf("ord-%d", rng.IntN(nOrders))
				var typ, data string
				switch r := rng.IntN(10); {
				case r < 3:
					typ, data = "CreateOrder", fmt.Sprintf(`{"customer_id":"cust-%d","items":[{"sku":"s1","qty":1,"unit_price":100}]}`, rng.IntN(3))
				case r < 8:
					typ, data = "AddItem", fmt.Sprintf(`{"sku":"s%d","qty":%d,"unit_price":100}`, rng.IntN(3), 1+rng.IntN(3))
				default:
					typ, data = "ConfirmOrder", `{}`
				}
				send("/v1/commands/order/"+o, fmt.Sprintf(`{"type":%q,"data":%s,"command_id":%q}`, typ, data, cmdID))
			}
		}()
	}
	t0 := time.Now()
	for i := range 4 {
		time.Sleep(time.Duration(400+mrand.IntN(800)) * time.Millisecond)
		p.kill()
		p = startServeConfig(t, bin, cfgPath, addr)
		t.Logf("kill %d: restarted (%s)", i+1, time.Since(t0).Round(time.Millisecond))
	}
	if stopCmd, startCmd := os.Getenv("STRATA_TEST_POSTGRES_STOP"), os.Getenv("STRATA_TEST_POSTGRES_START"); stopCmd != "" && startCmd != "" {
		if out, err := exec.Command("sh", "-c", stopCmd).CombinedOutput(); err != nil {
			t.Fatalf("stop PostgreSQL: %v\n%s", err, out)
		}
		sentMu.Lock()
		before := sent
		sentMu.Unlock()
		time.Sleep(3 * time.Second)
		var st struct {
			Projections []projections.Status `json:"projections"`
		}
		getJSON(t, base+"/v1/status", &st)
		down := 0
		for _, ps := range st.Projections {
			for _, s := range ps.Sinks {
				if s.Name == "postgres" && !s.Up {
					down++
				}
			}
		}
		if down == 0 {
			t.Errorf("PostgreSQL stopped, but no view says its postgres sink is down: %+v", st.Projections)
		}
		if out, err := exec.Command("sh", "-c", startCmd).CombinedOutput(); err != nil {
			t.Fatalf("start PostgreSQL: %v\n%s", err, out)
		}
		sentMu.Lock()
		t.Logf("PostgreSQL was down for 3s; %d commands went through meanwhile (%d in all)", sent-before, sent)
		sentMu.Unlock()
	} else {
		t.Log("STRATA_TEST_POSTGRES_STOP/_START not set: PostgreSQL is not stopped mid-stream in this run")
	}
	time.Sleep(time.Second)
	stopLoad()
	wg.Wait()
	if sent < 50 {
		t.Fatalf("only %d commands went through: the load did not run", sent)
	}

	names := kafka.Names{Namespace: ns}
	cat := schemas.Default()
	for _, v := range []struct {
		proj projections.Projection
		agg  string
		c    codec.Codec
	}{
		{accounts.Projection, account.Name, codec.Codec{Type: account.Type, Catalog: cat}},
		{orders.Projection, order.Name, codec.Codec{Type: order.Type, Catalog: cat}},
	} {
		topic := names.Events(v.agg)
		want, ends := fold(t, brokers, topic, v.c, v.proj)
		cn := conn()
		// Wait until the table has every event (the offsets reach the
		// topic's ends).
		var got map[int32]int64
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			got = map[int32]int64{}
			rows, err := cn.Query(ctx, "SELECT partition, next_offset FROM "+schema+"."+ns+"_sink_offsets WHERE view = $1 AND topic = $2", ns+"_"+v.proj.Name, topic)
			if err == nil {
				for rows.Next() {
					var part int32
					var off int64
					rows.Scan(&part, &off)
					got[part] = off
				}
				err = rows.Err()
			}
			if err == nil && fmt.Sprint(got) == fmt.Sprint(ends) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the offsets table says %v (%v), the topic ends at %v; log:\n%s", v.proj.Name, got, err, ends, p.logTail())
			}
		}
		rows, err := cn.Query(ctx, fmt.Sprintf("SELECT _key, _row_version, _deleted, to_jsonb(r) FROM %s.%s_%s_rows r", schema, ns, v.proj.Name))
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for rows.Next() {
			var key string
			var ver int64
			var deleted bool
			var doc map[string]any
			if err := rows.Scan(&key, &ver, &deleted, &doc); err != nil {
				t.Fatal(err)
			}
			w, ok := want[key]
			if !ok {
				t.Errorf("%s: the table has row %q, the events do not", v.proj.Name, key)
				continue
			}
			seen++
			if uint64(ver) != w.ver || deleted != (w.row == nil) {
				t.Errorf("%s/%s: version %d deleted %v; the events give version %d deleted %v", v.proj.Name, key, ver, deleted, w.ver, w.row == nil)
			}
			if w.row == nil {
				continue
			}
			var exp map[string]any
			json.Unmarshal(w.row, &exp)
			for _, f := range []string{"id", "owner", "balance", "currency", "customer_id", "status", "total", "total_items", "version"} {
				if ev, ok := exp[f]; ok && fmt.Sprint(ev) != fmt.Sprint(doc[f]) {
					t.Errorf("%s/%s: %s = %v in the table, %v from the events", v.proj.Name, key, f, doc[f], ev)
				}
			}
			if it, ok := exp["items"]; ok {
				a, _ := json.Marshal(it)
				b, _ := json.Marshal(doc["items"])
				if string(a) != string(b) && !(string(a) == "null" && string(b) == "[]") {
					t.Errorf("%s/%s: items %s in the table, %s from the events", v.proj.Name, key, b, a)
				}
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if seen != len(want) {
			t.Errorf("%s: %d rows in the table, %d from the events", v.proj.Name, seen, len(want))
		}
		cn.Close(ctx)
		t.Logf("%s: %d rows equal to the recomputation; offsets %v", v.proj.Name, seen, ends)
	}
}

type foldedRow struct {
	ver uint64
	row json.RawMessage
}

// fold reads a whole events topic and folds it with the projection's
// Apply in memory; it returns the rows with their versions and the
// topic's ends.
func fold(t *testing.T, brokers, topic string, c codec.Codec, proj projections.Projection) (map[string]foldedRow, map[int32]int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.KeepControlRecords()) // the ends count the transaction markers
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kafka.StableEnds(ctx, kadm.NewClient(cl), topic, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx := &memTx{rows: map[string]foldedRow{}, state: map[string]json.RawMessage{}}
	reached := func() bool {
		for part, end := range ends {
			if tx.next[part] < end {
				return false
			}
		}
		return true
	}
	tx.next = map[int32]int64{}
	for deadline := time.Now().Add(30 * time.Second); !reached(); {
		if time.Now().After(deadline) {
			t.Fatalf("reading %s: at %v of %v", topic, tx.next, ends)
		}
		pctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			tx.next[r.Partition] = r.Offset + 1
			if r.Attrs.IsControl() {
				return
			}
			datas, _, err := c.DecodeEvents(r.Value)
			if err != nil {
				t.Fatalf("decode %s/%d@%d: %v", topic, r.Partition, r.Offset, err)
			}
			ev := projections.Event{Aggregate: c.Type.Name(), AggregateID: string(r.Key), Timestamp: r.Timestamp, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
			for _, h := range r.Headers {
				if h.Key == kafka.HeaderVersion {
					ev.Version, _ = strconv.ParseUint(string(h.Value), 10, 64)
				}
			}
			for _, d := range datas {
				ev.Type, ev.Data = d.EventType(), d
				tx.touched = map[string]bool{}
				if err := proj.Apply(tx, ev); err != nil {
					t.Fatalf("apply %s/%d@%d: %v", topic, r.Partition, r.Offset, err)
				}
				for k := range tx.touched {
					fr := tx.rows[k]
					fr.ver++
					tx.rows[k] = fr
				}
			}
		})
	}
	return tx.rows, ends
}

// memTx is a projections.Tx over maps, counting the events that write
// each row as the runner does.
type memTx struct {
	rows    map[string]foldedRow
	state   map[string]json.RawMessage
	touched map[string]bool
	next    map[int32]int64
}

func (m *memTx) Get(key string, row any) (bool, error) {
	r, ok := m.rows[key]
	if !ok || r.row == nil {
		return false, nil
	}
	return true, json.Unmarshal(r.row, row)
}

func (m *memTx) Put(key string, row any) error {
	v, err := json.Marshal(row)
	r := m.rows[key]
	r.row = v
	m.rows[key] = r
	m.touched[key] = true
	return err
}

func (m *memTx) Delete(key string) error {
	r := m.rows[key]
	r.row = nil
	m.rows[key] = r
	m.touched[key] = true
	return nil
}

func (m *memTx) GetState(key string, v any) (bool, error) {
	s, ok := m.state[key]
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(s, v)
}

func (m *memTx) PutState(key string, v any) error {
	b, err := json.Marshal(v)
	m.state[key] = b
	return err
}
