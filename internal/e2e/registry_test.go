package e2e

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/registry"
	"github.com/strata-es/strata/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// testConfluentWireFormat: with a schema registry, events are written in
// its wire format (0x00, schema ID, body) and a node reads them back,
// including one with an empty disk that knows no IDs yet.
func testConfluentWireFormat(t *testing.T, b *broker) {
	fake := srfake.New()
	t.Cleanup(fake.Close)
	cl, err := sr.NewClient(sr.URLs(fake.URL()))
	if err != nil {
		t.Fatal(err)
	}
	reg, _, err := registry.Register(context.Background(), cl, schemas.Default(), schemas.UpcastedBy(account.Type))
	if err != nil {
		t.Fatal(err)
	}
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir(), catalog: schemas.Default().WithRegistry(reg, true)})
	s.send(t, "acc-w", "OpenAccount", `{"owner":"wu","initial_balance":3}`)
	s.send(t, "acc-w", "Deposit", `{"amount":4}`)
	s.stop(t)
	events := readAll(t, b, names.Events("account"), kgo.ReadCommitted())
	sub, _ := schemas.Default().Subject("account/AccountOpened")
	wantID, _ := reg.ID(sub.Latest())
	if len(events) != 2 {
		t.Fatalf("%d events on the topic, want 2", len(events))
	}
	if v := events[0].Value; len(v) < 5 || v[0] != 0 || int(binary.BigEndian.Uint32(v[1:5])) != wantID {
		t.Fatalf("events not in the registry's wire format: first % x, want ID %d", v[:min(5, len(v))], wantID)
	}
	// A node with an empty disk that knows no IDs (it writes single-object
	// encoding) restores from them, resolving IDs through the registry.
	fresh := schemas.Default().WithRegistry(registry.NewResolver(context.Background(), cl), false)
	s = startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir(), catalog: fresh})
	code, res := s.send(t, "acc-w", "Withdraw", `{"amount":7}`)
	if code != 200 || num(res["version"]) != 3 {
		t.Fatalf("after restore: %d %v", code, res)
	}
	var row accountRow
	if code := s.do(t, "GET", "/v1/views/accounts/acc-w?position="+res["position"].(string), "", &row); code != 200 || row.Balance != 0 || row.Version != 3 {
		t.Fatalf("view: %d %+v", code, row)
	}
}
