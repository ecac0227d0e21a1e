package e2e

import (
	"os"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/projections"
	"github.com/strata-es/strata/projections/accounts"
	"github.com/strata-es/strata/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

// watchRow is the row of a test view that deletes rows: an account is
// watched from its opening until its first withdrawal.
type watchRow struct {
	ID    string `json:"id" avro:"id"`
	Count int64  `json:"count" avro:"count"`
}

var watchProjection = projections.Projection{
	Name:       "watch",
	Aggregates: []string{account.Name},
	Publish:    true,
	Row:        watchRow{},
	Apply: func(tx projections.Tx, ev projections.Event) error {
		switch ev.Data.(type) {
		case account.Opened, account.Deposited:
			var r watchRow
			if _, err := tx.Get(ev.AggregateID, &r); err != nil {
				return err
			}
			r.ID, r.Count = ev.AggregateID, r.Count+1
			return tx.Put(ev.AggregateID, r)
		case account.Withdrawn:
			return tx.Delete(ev.AggregateID)
		}
		return nil
	},
}

const watchSchema = `{"type":"record","name":"watch","namespace":"strata.views","fields":[{"name":"id","type":"string"},{"name":"count","type":"long"}]}`

// withViewSchema returns the built-in catalog plus one view schema.
func withViewSchema(t *testing.T, file, text string) *schemas.Catalog {
	t.Helper()
	fsys := fstest.MapFS{file: {Data: []byte(text)}}
	for _, s := range schemas.Default().Subjects() {
		for _, v := range s.Versions {
			fsys[v.File] = &fstest.MapFile{Data: []byte(v.Text)}
		}
	}
	fsys[schemas.ModesFile] = &fstest.MapFile{Data: []byte("default: FULL_TRANSITIVE\nsubjects:\n  account/AccountOpened: BACKWARD_TRANSITIVE\n")}
	cat, err := schemas.Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// testPublishedViewTopic: a published view's rows are on the compacted
// topic <ns>.view.<view>, keyed by row key, in Avro that any consumer
// decodes with the schema file; a deleted row is a tombstone.
func testPublishedViewTopic(t *testing.T, b *broker) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir(), catalog: withViewSchema(t, "views/watch.v1.avsc", watchSchema),
		projections: []projections.Projection{accounts.Projection, watchProjection}})
	s.send(t, "acc-pv", "OpenAccount", `{"owner":"pia","initial_balance":10}`)
	s.send(t, "acc-pv", "Deposit", `{"amount":5}`)
	s.send(t, "acc-gone", "OpenAccount", `{"owner":"gil","initial_balance":3}`)
	s.send(t, "acc-gone", "Withdraw", `{"amount":3}`)

	// An outside consumer: a plain kgo client and the .avsc file.
	raw, err := os.ReadFile("../../schemas/views/accounts.v1.avsc")
	if err != nil {
		t.Fatal(err)
	}
	sch := avro.MustParse(string(raw))
	var row map[string]any
	deadline := time.Now().Add(30 * time.Second)
	for row == nil || row["version"] != int64(2) {
		if time.Now().After(deadline) {
			t.Fatalf("no version 2 of acc-pv on %s; last %v", names.View("accounts"), row)
		}
		for _, r := range readAll(t, b, names.View("accounts"), kgo.ReadCommitted()) {
			if string(r.Key) != "acc-pv" {
				continue
			}
			if r.Value[0] != 0xC3 || r.Value[1] != 0x01 {
				t.Fatalf("not single-object encoding: % x", r.Value[:2])
			}
			row = nil
			if err := avro.Unmarshal(sch, r.Value[10:], &row); err != nil {
				t.Fatal(err)
			}
		}
	}
	if row["owner"] != "pia" || row["balance"] != int64(15) || row["currency"] != "EUR" {
		t.Fatalf("published row: %v", row)
	}
	// The deleted row's last record is a tombstone.
	deadline = time.Now().Add(30 * time.Second)
	for {
		var last *kgo.Record
		for _, r := range readAll(t, b, names.View("watch"), kgo.ReadCommitted()) {
			if string(r.Key) == "acc-gone" {
				last = r
			}
		}
		if last != nil && last.Value == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tombstone for acc-gone on %s (last %v)", names.View("watch"), last)
		}
	}
}
