package soak

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/aggregates/order"
	"github.com/strata-es/strata/internal/codec"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

// topicsFake builds the records of a run by hand, for the checker.
type topicsFake struct {
	t        *testing.T
	s        *soak
	events   []*kgo.Record
	results  []*kgo.Record
	commands []*kgo.Record
	offset   int64
}

func newTopicsFake(t *testing.T) *topicsFake {
	s := &soak{names: kafka.Names{Namespace: "t"}, ledger: newLedger(), problems: &problems{}, stats: &stats{}}
	return &topicsFake{t: t, s: s}
}

// send records a client's command; answer, if not empty, is the status it
// got, at version v.
func (f *topicsFake) send(id, typ, aggID, data string, expected *uint64) *sent {
	c := &command{ID: id, Agg: account.Name, AggID: aggID, Type: typ, Data: json.RawMessage(data), Expected: expected}
	sc := f.s.ledger.add(c, "http")
	f.commands = append(f.commands, &kgo.Record{Topic: "t.account.commands", Key: []byte(aggID),
		Headers: []kgo.RecordHeader{{Key: kafka.HeaderCommandID, Value: []byte(id)}}})
	return sc
}

// event appends an event of aggID at version v, written for command id.
func (f *topicsFake) event(aggID string, v uint64, id string, ev aggregates.Event) {
	c := codec.Codec{Type: account.Type, Catalog: schemas.Default()}
	payload, err := c.EncodeEvent(ev)
	if err != nil {
		f.t.Fatal(err)
	}
	f.offset++
	f.events = append(f.events, &kgo.Record{Topic: "t.account.events", Key: []byte(aggID), Value: payload, Offset: f.offset,
		Headers: []kgo.RecordHeader{
			{Key: kafka.HeaderEventType, Value: []byte(ev.EventType())},
			{Key: kafka.HeaderVersion, Value: []byte(strconv.FormatUint(v, 10))},
			{Key: kafka.HeaderCommandID, Value: []byte(id)},
		}})
}

// result appends a result record, and the answer a client got from it.
func (f *topicsFake) result(sc *sent, status string, v uint64, events ...eventRef) {
	r := result{CommandID: sc.cmd.ID, Aggregate: account.Name, AggregateID: sc.cmd.AggID, Status: status, Version: v, Events: events}
	b, _ := json.Marshal(r)
	f.offset++
	f.results = append(f.results, &kgo.Record{Topic: "t.account.results", Key: []byte(sc.cmd.ID), Value: b, Offset: f.offset,
		ProducerID: 7, ProducerEpoch: int16(f.offset), Headers: []kgo.RecordHeader{{Key: kafka.HeaderCommandOffset, Value: []byte("12")}}})
	f.s.ledger.answered(sc, &answer{result: r, Via: "test", At: time.Now()})
}

// check runs the topic checks and returns the problems found.
func (f *topicsFake) check() *problems {
	m := &model{codecs: map[string]codec.Codec{}, hist: map[string]*history{}, byCommand: map[string][]*evRec{},
		results: map[string][]*result{}, accepted: map[string][]*result{}, commands: map[string]int{}}
	for _, t := range []aggregates.Type{account.Type, order.Type} {
		m.codecs[t.Name()] = codec.Codec{Type: t, Catalog: schemas.Default()}
	}
	m.readEvents(f.s, account.Name, f.events)
	m.readResults(f.s, f.results)
	m.readCommands(f.commands)
	m.checkHistories(f.s)
	m.checkCommands(f.s)
	return f.s.problems
}

// history makes the common start: acc-1 opened with 100 by "open".
func (f *topicsFake) opened() {
	sc := f.send("open", "OpenAccount", "acc-1", `{"owner":"ada","initial_balance":100}`, nil)
	f.event("acc-1", 1, "open", account.Opened{Holder: "ada", InitialBalance: 100, Currency: "EUR"})
	f.result(sc, statusAccepted, 1, eventRef{"AccountOpened", 1})
}

func expect(t *testing.T, p *problems, kind int, contains string) {
	t.Helper()
	for k := range numProbs {
		want := 0
		if k == kind {
			want = 1
		}
		if (p.counts[k] > 0) != (want > 0) {
			t.Errorf("%s: %d problems %v, want %s", probNames[k], p.counts[k], p.first[k], map[bool]string{true: "some", false: "none"}[want > 0])
		}
	}
	if kind < numProbs && !strings.Contains(strings.Join(p.first[kind], "\n"), contains) {
		t.Errorf("%s problems %q do not mention %q", probNames[kind], p.first[kind], contains)
	}
}

func TestCheckClean(t *testing.T) {
	f := newTopicsFake(t)
	f.opened()
	dep := f.send("dep", "Deposit", "acc-1", `{"amount":50}`, nil)
	f.event("acc-1", 2, "dep", account.Deposited{Amount: 50})
	f.result(dep, statusAccepted, 2, eventRef{"MoneyDeposited", 2})
	// A resend gets the same result again, and writes nothing.
	f.commands = append(f.commands, f.commands[len(f.commands)-1])
	f.result(dep, statusAccepted, 2, eventRef{"MoneyDeposited", 2})
	wd := f.send("wd", "Withdraw", "acc-1", `{"amount":500}`, nil)
	f.result(wd, statusRejected, 2)
	v := uint64(1)
	stale := f.send("stale", "Deposit", "acc-1", `{"amount":5}`, &v)
	f.result(stale, statusConflict, 2)
	// Sent, never written, never answered: fine.
	f.s.ledger.add(&command{ID: "lost-in-the-network", Agg: account.Name, AggID: "acc-1", Type: "Deposit", Data: json.RawMessage(`{"amount":1}`)}, "http")
	expect(t, f.check(), numProbs, "")
}

func TestCheckAppliedTwice(t *testing.T) {
	f := newTopicsFake(t)
	f.opened()
	dep := f.send("dep", "Deposit", "acc-1", `{"amount":50}`, nil)
	f.event("acc-1", 2, "dep", account.Deposited{Amount: 50})
	f.event("acc-1", 3, "dep", account.Deposited{Amount: 50})
	f.result(dep, statusAccepted, 2, eventRef{"MoneyDeposited", 2})
	p := f.check()
	if p.counts[probDuplicated] == 0 || !strings.Contains(p.first[probDuplicated][0], "command dep has 2 events") {
		t.Fatalf("duplicated: %v", p.first)
	}
}

func TestCheckAcknowledgedThenLost(t *testing.T) {
	f := newTopicsFake(t)
	f.opened()
	dep := f.send("dep", "Deposit", "acc-1", `{"amount":50}`, nil)
	f.result(dep, statusAccepted, 2, eventRef{"MoneyDeposited", 2})
	// Another command took version 2: the forensics name it.
	other := f.send("other", "Deposit", "acc-1", `{"amount":7}`, nil)
	f.event("acc-1", 2, "other", account.Deposited{Amount: 7})
	f.result(other, statusAccepted, 2, eventRef{"MoneyDeposited", 2})
	p := f.check()
	lost := strings.Join(p.first[probLost], "\n")
	if p.counts[probLost] == 0 || !strings.Contains(lost, "acknowledged at version 2") {
		t.Fatalf("lost: %v", p.first)
	}
	for _, want := range []string{
		"result 1: accepted v2 [MoneyDeposited@v2] at t.account.results/0 offset 3 (producer 7 epoch 3, ",
		", command offset 12)",
		"account/acc-1 v2: MoneyDeposited by other at t.account.events/0 offset 4 (producer 0 epoch 0",
		"also accepted at v2: other (accepted v2 [MoneyDeposited@v2]) at t.account.results/0 offset 5",
		"account/acc-1 has 2 events on the topic",
	} {
		if !strings.Contains(lost, want) {
			t.Errorf("the forensics lack %q:\n%s", want, lost)
		}
	}
}

func TestCheckResultMissing(t *testing.T) {
	f := newTopicsFake(t)
	f.opened()
	f.send("dep", "Deposit", "acc-1", `{"amount":50}`, nil)
	f.event("acc-1", 2, "dep", account.Deposited{Amount: 50})
	p := f.check()
	if p.counts[probLost] == 0 || !strings.Contains(p.first[probLost][0], "written 1 times") {
		t.Fatalf("lost: %v", p.first)
	}
}

func TestCheckResendGotAnotherResult(t *testing.T) {
	f := newTopicsFake(t)
	f.opened()
	wd := f.send("wd", "Withdraw", "acc-1", `{"amount":150}`, nil)
	f.result(wd, statusRejected, 1)
	dep := f.send("dep", "Deposit", "acc-1", `{"amount":100}`, nil)
	f.event("acc-1", 2, "dep", account.Deposited{Amount: 100})
	f.result(dep, statusAccepted, 2, eventRef{"MoneyDeposited", 2})
	// The resend of wd is decided again, and accepted this time.
	f.commands = append(f.commands, f.commands[1])
	f.event("acc-1", 3, "wd", account.Withdrawn{Amount: 150})
	f.result(wd, statusAccepted, 3, eventRef{"MoneyWithdrawn", 3})
	p := f.check()
	expect(t, p, probInconsistent, "result 2 differs from the first: rejected v1")
	if p.counts[probInconsistent] != 1 || p.tags[probInconsistent][tagRefusedThenApplied] != 1 {
		t.Errorf("one command, one problem of class %q: %d problems, classes %v", tagRefusedThenApplied, p.counts[probInconsistent], p.tags[probInconsistent])
	}
}

func TestCheckNegativeBalance(t *testing.T) {
	f := newTopicsFake(t)
	f.opened()
	wd := f.send("wd", "Withdraw", "acc-1", `{"amount":150}`, nil)
	f.event("acc-1", 2, "wd", account.Withdrawn{Amount: 150})
	f.result(wd, statusAccepted, 2, eventRef{"MoneyWithdrawn", 2})
	p := f.check()
	all := strings.Join(p.first[probInconsistent], "\n")
	if !strings.Contains(all, "balance -50 below zero") || !strings.Contains(all, "insufficient funds") {
		t.Fatalf("inconsistent: %v", p.first)
	}
}

func TestCheckWrongRejection(t *testing.T) {
	f := newTopicsFake(t)
	f.opened()
	wd := f.send("wd", "Withdraw", "acc-1", `{"amount":50}`, nil)
	f.result(wd, statusRejected, 1)
	expect(t, f.check(), probInconsistent, "was rejected at version 1")
}

func TestCheckGap(t *testing.T) {
	f := newTopicsFake(t)
	f.opened()
	dep := f.send("dep", "Deposit", "acc-1", `{"amount":50}`, nil)
	f.event("acc-1", 3, "dep", account.Deposited{Amount: 50})
	f.result(dep, statusAccepted, 3, eventRef{"MoneyDeposited", 3})
	expect(t, f.check(), probInconsistent, "versions are not gapless")
}

func TestCheckAcceptedDespiteStaleVersion(t *testing.T) {
	f := newTopicsFake(t)
	f.opened()
	v := uint64(0)
	dep := f.send("dep", "Deposit", "acc-1", `{"amount":50}`, &v)
	f.event("acc-1", 2, "dep", account.Deposited{Amount: 50})
	f.result(dep, statusAccepted, 2, eventRef{"MoneyDeposited", 2})
	expect(t, f.check(), probInconsistent, "expected_version 0) was accepted at version 1")
}

func TestJSONEqual(t *testing.T) {
	for _, c := range []struct {
		a, b string
		eq   bool
	}{
		{`{"items":null,"total":1}`, `{"items":[],"total":1}`, true},
		{`{"items":[{"sku":"A"}]}`, `{"items":[]}`, false},
		{`{"balance":10}`, `{"balance":10.0}`, true},
		{`{"balance":10}`, `{"balance":11}`, false},
		{`{"a":1}`, `{"a":1,"b":2}`, false},
	} {
		if got := jsonEqual([]byte(c.a), []byte(c.b)); got != c.eq {
			t.Errorf("jsonEqual(%s, %s) = %v", c.a, c.b, got)
		}
	}
}

// TestCheckStatusReportsStoppedPartitions: a partition an instance stopped
// applying is a problem even when what it serves happens to be current.
func TestCheckStatusReportsStoppedPartitions(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/status" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, `{"processors":[{"aggregate":"account","failed":{"2":"following: event at t.account.events partition 2 offset 7: a gap"}},{"aggregate":"order"}]}`)
	}))
	defer srv.Close()
	s := &soak{problems: &problems{}}
	s.checkStatus(context.Background(), &instance{proc: &proc{name: "instance 1"}, url: srv.URL})
	expect(t, s.problems, probInconsistent, "instance 1: account partition 2 stopped: following: event at t.account.events partition 2 offset 7")
}

func TestErrorLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	log := "time=1 level=INFO msg=a\ntime=2 level=ERROR msg=\"follower stopped\"\n{\"level\":\"ERROR\",\"msg\":\"b\"}\ntime=3 level=WARN msg=c\n"
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	got := errorLines(path, 5)
	want := []string{`time=2 level=ERROR msg="follower stopped"`, `{"level":"ERROR","msg":"b"}`}
	if !slices.Equal(got, want) {
		t.Errorf("errorLines = %q, want %q", got, want)
	}
	if got := errorLines(path, 1); len(got) != 1 {
		t.Errorf("errorLines(…, 1) gave %d lines", len(got))
	}
}
