package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testOldEventsReplayIntoNewCode: events as an older release wrote them
// (AccountOpened v1 without currency and with owner, MoneyWithdrawn v1 in
// euros as a double) are on the events topic; a node started on them
// serves state, history and views in today's shape, and new commands
// continue the stream.
func testOldEventsReplayIntoNewCode(t *testing.T, b *broker) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	// Create the topics, then write history as the old release did.
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir()})
	s.stop(t)
	cat := schemas.Default()
	enc := func(subject string, n int, data map[string]any) []byte {
		sub, _ := cat.Subject(subject)
		v, err := cat.EncodeVersion(sub.Versions[n-1], data)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	p := kafka.PartitionFor([]byte("acc-old"), 4)
	ev := func(version, typ string, value []byte) *kgo.Record {
		return &kgo.Record{Topic: names.Events("account"), Partition: p, Key: []byte("acc-old"), Value: value,
			Timestamp: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
			Headers:   hdrs("strata-event-type", typ, "strata-aggregate-version", version, "strata-command-id", "old-"+version)}
	}
	cl := kafkaClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce(t, cl,
		ev("1", "AccountOpened", enc("account/AccountOpened", 1, map[string]any{"owner": "olga", "initial_balance": int64(10000)})),
		ev("2", "MoneyWithdrawn", enc("account/MoneyWithdrawn", 1, map[string]any{"amount": 12.5})),
		ev("3", "MoneyDeposited", enc("account/MoneyDeposited", 1, map[string]any{"amount": int64(50)})),
	)

	s = startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir()})
	code, res := s.send(t, "acc-old", "Withdraw", `{"amount":8800}`)
	if code != 200 || num(res["version"]) != 4 {
		t.Fatalf("withdraw after the old history: %d %v (want version 4)", code, res)
	}
	var agg struct {
		Version int
		State   struct {
			Owner    string
			Balance  int
			Currency string
		}
	}
	if code := s.do(t, "GET", "/v1/aggregates/account/acc-old?position="+res["position"].(string), "", &agg); code != 200 ||
		agg.State.Owner != "olga" || agg.State.Currency != "EUR" || agg.State.Balance != 10000-1250+50-8800 || agg.Version != 4 {
		t.Fatalf("state: %d %+v", code, agg)
	}
	var hist struct {
		Events []struct {
			Type          string
			Version       int
			SchemaVersion int `json:"schema_version"`
			Data          map[string]any
		}
	}
	s.do(t, "GET", "/v1/aggregates/account/acc-old/events", "", &hist)
	var got []string
	for _, e := range hist.Events {
		got = append(got, e.Type+" v"+itoa(e.SchemaVersion)+" "+mustJSON(t, e.Data))
	}
	want := []string{
		`AccountOpened v1 {"currency":"EUR","holder":"olga","initial_balance":10000}`,
		`MoneyWithdrawn v1 {"amount":1250}`,
		`MoneyDeposited v1 {"amount":50}`,
		`MoneyWithdrawn v2 {"amount":8800}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var row struct {
		Owner    string
		Balance  int
		Currency string
		Version  int
	}
	if code := s.do(t, "GET", "/v1/views/accounts/acc-old?position="+res["position"].(string), "", &row); code != 200 ||
		row.Owner != "olga" || row.Currency != "EUR" || row.Balance != 0 || row.Version != 4 {
		t.Fatalf("view: %d %+v", code, row)
	}
}
