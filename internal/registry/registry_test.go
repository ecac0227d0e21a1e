package registry

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/internal/codec"
	"github.com/strata-es/strata/schemas"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

func TestRegisterAndTheWireFormat(t *testing.T) {
	fake := srfake.New()
	defer fake.Close()
	cl, err := sr.NewClient(sr.URLs(fake.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cat := schemas.Default()
	reg, regs, err := Register(ctx, cl, cat, schemas.UpcastedBy(account.Type))
	if err != nil {
		t.Fatal(err)
	}
	versions := 0
	for _, s := range cat.Subjects() {
		versions += len(s.Versions)
	}
	if len(regs) != versions {
		t.Fatalf("registered %d versions, the catalog has %d", len(regs), versions)
	}
	levels := map[string]sr.CompatibilityLevel{}
	for _, r := range regs {
		levels[r.Subject] = r.Level
	}
	for subject, want := range map[string]sr.CompatibilityLevel{
		"strata.account.AccountOpened":  sr.CompatBackwardTransitive, // compatibility.yaml
		"strata.account.MoneyDeposited": sr.CompatFullTransitive,     // the default
		"strata.account.MoneyWithdrawn": sr.CompatNone,               // an upcaster bridges v1 → v2
	} {
		if levels[subject] != want {
			t.Errorf("%s level %s, want %s", subject, levels[subject], want)
		}
		got := cl.Compatibility(ctx, subject)
		if len(got) != 1 || got[0].Err != nil || got[0].Level != want {
			t.Errorf("registry's level of %s: %+v, want %s", subject, got, want)
		}
	}
	// Registering again is idempotent.
	_, again, err := Register(ctx, cl, cat, schemas.UpcastedBy(account.Type))
	if err != nil {
		t.Fatal(err)
	}
	for i := range regs {
		if again[i].ID != regs[i].ID {
			t.Fatalf("re-registration changed %s v%d's ID %d → %d", regs[i].Subject, regs[i].Version.N, regs[i].ID, again[i].ID)
		}
	}

	// Events in the registry's wire format: 0x00, ID, body.
	wire := cat.WithRegistry(reg, true)
	c := codec.Codec{Type: account.Type, Catalog: wire}
	b, err := c.EncodeEvent(account.Deposited{Amount: 42})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := cat.Subject("account/MoneyDeposited")
	id, _ := reg.ID(s.Latest())
	if b[0] != 0 || int(binary.BigEndian.Uint32(b[1:5])) != id {
		t.Fatalf("wire format header % x, want 00 and ID %d", b[:5], id)
	}
	ev, _, err := c.DecodeEvent(b)
	if err != nil || ev != (account.Deposited{Amount: 42}) {
		t.Fatalf("decode: %v %v", ev, err)
	}
	// A reader that knows no IDs yet resolves them through the registry.
	fresh := codec.Codec{Type: account.Type, Catalog: cat.WithRegistry(NewResolver(ctx, cl), false)}
	if ev, _, err := fresh.DecodeEvent(b); err != nil || ev != (account.Deposited{Amount: 42}) {
		t.Fatalf("decode through the registry: %v %v", ev, err)
	}
	// Single-object encoding stays readable.
	soe, _ := schemas.Default().Encode("account/MoneyDeposited", account.Deposited{Amount: 1})
	if ev, _, err := fresh.DecodeEvent(soe); err != nil || ev != (account.Deposited{Amount: 1}) {
		t.Fatalf("single-object through a registry catalog: %v %v", ev, err)
	}
	// An ID the registry does not have is a clear error.
	if _, _, err := fresh.DecodeEvent([]byte{0, 0, 0, 0x7f, 0x7f, 2}); err == nil {
		t.Fatal("an unknown schema ID decoded")
	}
}
