package position

import (
	"errors"
	"maps"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	p := Position{{"strata.account.events", 3}: 17, {"strata.order.events", 0}: 0}
	q, err := Parse(p.Token())
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 2 || q[TP{"strata.account.events", 3}] != 17 || q[TP{"strata.order.events", 0}] != 0 {
		t.Fatalf("got %v", q)
	}
	if p.Token() != q.Token() {
		t.Fatal("token not canonical")
	}
	if e, _ := Parse(""); len(e) != 0 {
		t.Fatal("empty token is not the empty position")
	}
}

func TestMergeKeepsTheLargerOffset(t *testing.T) {
	p := Position{{"a", 0}: 5, {"a", 1}: 9}
	p.Merge(Position{{"a", 0}: 7, {"a", 1}: 2, {"b", 0}: 1})
	if p[TP{"a", 0}] != 7 || p[TP{"a", 1}] != 9 || p[TP{"b", 0}] != 1 {
		t.Fatalf("got %v", p)
	}
}

func TestParseRejects(t *testing.T) {
	for _, tok := range []string{"!!", "YWJj", "YTox", "YTotMTox", "YToxOi01", string(make([]byte, MaxTokenLength+1))} {
		if _, err := Parse(tok); !errors.Is(err, ErrBadToken) {
			t.Errorf("Parse(%q) err = %v", tok, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Position{{"t", 1}: 2}.Token())
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := Parse(tok)
		if err != nil {
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("Parse(%q): an error that is not ErrBadToken: %v", tok, err)
			}
			return
		}
		q, err := Parse(p.Token())
		if err != nil || !maps.Equal(q, p) {
			t.Fatalf("re-parse of %q: %v %v, want %v", p.Token(), q, err, p)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	tok := Position{{"strata.account.events", 3}: 1234567}.Token()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(tok); err != nil {
			b.Fatal(err)
		}
	}
}
