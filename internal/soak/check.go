package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/aggregates/order"
	"github.com/strata-es/strata/internal/codec"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/schemas"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Kinds of problems. Every problem is one of them; the soak passes when
// there are none.
const (
	probLost         = iota // acknowledged (or written) and then missing
	probDuplicated          // applied, or answered, more often than sent
	probInconsistent        // anything else that breaks an invariant
	numProbs
)

var probNames = [numProbs]string{"lost", "duplicated", "inconsistent"}

// problems collects what the checks found. Safe for concurrent use.
type problems struct {
	mu     sync.Mutex
	counts [numProbs]int
	first  [numProbs][]string
	// tags count the problems of a kind that fall in a class worth
	// naming in the summary (a resend answered otherwise, …).
	tags [numProbs]map[string]int
}

// maxListed is how many problems of each kind the summary lists.
const maxListed = 10

func (p *problems) add(kind int, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[kind]++
	if len(p.first[kind]) < maxListed {
		p.first[kind] = append(p.first[kind], fmt.Sprintf(format, args...))
	}
}

// addTagged is add for a problem of a named class.
func (p *problems) addTagged(kind int, tag, format string, args ...any) {
	p.add(kind, format, args...)
	if tag == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tags[kind] == nil {
		p.tags[kind] = map[string]int{}
	}
	p.tags[kind][tag]++
}

func (p *problems) count(kind int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[kind]
}

// evRec is one record of an events topic, decoded.
type evRec struct {
	agg, id   string
	version   uint64
	typ       string
	commandID string
	partition int32
	offset    int64
	at        time.Time
	events    []aggregates.Event // usually one; an upcaster may make more
	rec       recordAt
}

// history is one aggregate's events, in order, and its state after each.
type history struct {
	agg, id string
	events  []*evRec
	// states[v] is the state at version v (states[0] the initial one);
	// nil past a gap or an event that could not be read.
	states []any
}

func (h *history) key() string  { return h.agg + "/" + h.id }
func (h *history) last() uint64 { return uint64(len(h.events)) }

// model is what the topics say happened, read after the run.
type model struct {
	codecs    map[string]codec.Codec
	hist      map[string]*history  // by aggregate/id
	byCommand map[string][]*evRec  // events by command ID
	results   map[string][]*result // results-topic records by command ID, in order
	// accepted lists the accepted results by the aggregate and version
	// they claim, for the forensics of a problem.
	accepted  map[string][]*result
	commands  map[string]int // commands-topic records by command ID
	nEvents   int
	nResults  int
	nCommands int
	nDLQ      int
}

// check reads the topics and checks every invariant against them, the
// clients' ledger and every instance's HTTP API.
//
// settled is called once every command written has been processed (or
// the wait for it gave up), when the checks proper start.
func (s *soak) check(ctx context.Context, settled func()) (*model, error) {
	cl, err := kgo.NewClient(s.kafkaOpts()...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	aggs := []string{account.Name, order.Name}
	s.logf("check: waiting until every command written has been processed")
	if err := s.waitProcessed(ctx, adm, aggs, 2*time.Minute); err != nil {
		s.problems.add(probInconsistent, "%v", err)
	}
	settled()
	var topics []string
	for _, a := range aggs {
		topics = append(topics, s.names.Commands(a), s.names.Events(a), s.names.Results(a), s.names.DLQ(a))
	}
	s.logf("check: reading the topics (read_committed)")
	recs, err := readTopics(ctx, s.kafkaOpts(), adm, 2*time.Minute, topics...)
	if err != nil {
		return nil, fmt.Errorf("read the topics: %w", err)
	}
	m := &model{
		codecs:    map[string]codec.Codec{},
		hist:      map[string]*history{},
		byCommand: map[string][]*evRec{},
		results:   map[string][]*result{},
		accepted:  map[string][]*result{},
		commands:  map[string]int{},
	}
	cat := schemas.Default()
	for _, t := range []aggregates.Type{account.Type, order.Type} {
		m.codecs[t.Name()] = codec.Codec{Type: t, Catalog: cat}
	}
	for _, a := range aggs {
		m.readEvents(s, a, recs[s.names.Events(a)])
		m.readResults(s, recs[s.names.Results(a)])
		m.readCommands(recs[s.names.Commands(a)])
		for _, r := range recs[s.names.DLQ(a)] {
			m.nDLQ++
			reason, _ := header(r, kafka.HeaderDLQReason)
			s.problems.add(probInconsistent, "%s/%d offset %d: a command was dead-lettered (%s); the workload sends only valid commands",
				r.Topic, r.Partition, r.Offset, reason)
		}
	}
	s.logf("check: %d events of %d aggregates, %d results, %d command records", m.nEvents, len(m.hist), m.nResults, m.nCommands)
	m.checkHistories(s)
	m.checkCommands(s)
	s.logf("check: querying every instance's aggregates and views")
	s.checkInstances(ctx, m)
	return m, nil
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// readEvents decodes an events topic into histories, in offset order per
// partition (an aggregate lives in one partition).
func (m *model) readEvents(s *soak, agg string, recs []*kgo.Record) {
	c := m.codecs[agg]
	sort.SliceStable(recs, func(i, j int) bool {
		if recs[i].Partition != recs[j].Partition {
			return recs[i].Partition < recs[j].Partition
		}
		return recs[i].Offset < recs[j].Offset
	})
	partOf := map[string]int32{}
	for _, r := range recs {
		m.nEvents++
		e := &evRec{agg: agg, id: string(r.Key), partition: r.Partition, offset: r.Offset, at: r.Timestamp, rec: atOf(r)}
		where := fmt.Sprintf("%s/%d offset %d", r.Topic, r.Partition, r.Offset)
		e.typ, _ = header(r, kafka.HeaderEventType)
		e.commandID, _ = header(r, kafka.HeaderCommandID)
		vs, _ := header(r, kafka.HeaderVersion)
		v, err := strconv.ParseUint(vs, 10, 64)
		if err != nil {
			s.problems.add(probInconsistent, "event at %s: bad version header %q", where, vs)
			continue
		}
		e.version = v
		if e.events, _, err = c.DecodeEvents(r.Value); err != nil {
			s.problems.add(probInconsistent, "event at %s (%s/%s v%d): cannot decode: %v", where, agg, e.id, v, err)
		}
		k := agg + "/" + e.id
		if p, ok := partOf[k]; ok && p != r.Partition {
			s.problems.add(probInconsistent, "%s has events in partitions %d and %d", k, p, r.Partition)
		}
		partOf[k] = r.Partition
		h := m.hist[k]
		if h == nil {
			h = &history{agg: agg, id: e.id}
			m.hist[k] = h
		}
		h.events = append(h.events, e)
		if e.commandID == "" {
			s.problems.add(probInconsistent, "event at %s (%s v%d) has no command ID header", where, k, v)
		} else {
			m.byCommand[e.commandID] = append(m.byCommand[e.commandID], e)
		}
	}
}

func (m *model) readResults(s *soak, recs []*kgo.Record) {
	for _, r := range recs {
		m.nResults++
		var res result
		if err := json.Unmarshal(r.Value, &res); err != nil {
			s.problems.add(probInconsistent, "result at %s/%d offset %d: %v", r.Topic, r.Partition, r.Offset, err)
			continue
		}
		if res.CommandID != string(r.Key) {
			s.problems.add(probInconsistent, "result at %s/%d offset %d: key %q, command_id %q", r.Topic, r.Partition, r.Offset, r.Key, res.CommandID)
		}
		res.at = atOf(r)
		res.at.commandOffset, _ = header(r, kafka.HeaderCommandOffset)
		m.results[string(r.Key)] = append(m.results[string(r.Key)], &res)
		if res.Status == statusAccepted {
			k := versionKey(res.Aggregate, res.AggregateID, res.Version)
			m.accepted[k] = append(m.accepted[k], &res)
		}
	}
}

func versionKey(agg, id string, v uint64) string { return fmt.Sprintf("%s/%s@%d", agg, id, v) }

// forensics describes where command id's records are and what surrounds
// them, so that a problem can be traced to its transaction: its results
// (topic, partition, offset, producer ID and epoch, time, command offset),
// the aggregate's events around the version the command was answered at,
// and every other accepted result claiming that version.
func (m *model) forensics(c *command, id string, v uint64) string {
	var parts []string
	for i, r := range m.results[id] {
		parts = append(parts, fmt.Sprintf("result %d: %s at %s", i+1, r, r.at))
	}
	for _, e := range m.byCommand[id] {
		parts = append(parts, fmt.Sprintf("its event %s v%d at %s", e.typ, e.version, e.rec))
	}
	if h := m.hist[c.key()]; h != nil && v > 0 {
		for _, e := range h.events {
			if e.version+2 >= v && e.version <= v+2 {
				parts = append(parts, fmt.Sprintf("%s v%d: %s by %s at %s", c.key(), e.version, e.typ, e.commandID, e.rec))
			}
		}
		parts = append(parts, fmt.Sprintf("%s has %d events on the topic", c.key(), len(h.events)))
	}
	for _, r := range m.accepted[versionKey(c.Agg, c.AggID, v)] {
		if r.CommandID != id {
			parts = append(parts, fmt.Sprintf("also accepted at v%d: %s (%s) at %s", v, r.CommandID, r, r.at))
		}
	}
	return strings.Join(parts, "; ")
}

func (m *model) readCommands(recs []*kgo.Record) {
	for _, r := range recs {
		if _, fwd := header(r, kafka.HeaderForwardedFrom); fwd {
			continue // a copy Strata made: the original has the result
		}
		m.nCommands++
		id, _ := header(r, kafka.HeaderCommandID)
		m.commands[id]++
	}
}

// checkHistories checks each aggregate's events: versions 1, 2, 3… without
// gaps or repeats, a command's events applied once, no account balance
// below zero at any version; and replays the states.
func (m *model) checkHistories(s *soak) {
	keys := slices.Sorted(maps.Keys(m.hist))
	for _, k := range keys {
		h := m.hist[k]
		c := m.codecs[h.agg]
		state := c.Type.NewState()
		h.states = []any{state}
		var balance int64
		for i, e := range h.events {
			want := uint64(i + 1)
			if e.version != want {
				s.problems.add(probInconsistent, "%s: event %d at %s/%d offset %d has version %d, want %d (command %s): versions are not gapless",
					k, i+1, s.names.Events(h.agg), e.partition, e.offset, e.version, want, e.commandID)
				h.states = append(h.states, nil)
				state = nil
				continue
			}
			if state != nil && e.events != nil {
				for _, ev := range e.events {
					state = c.Type.Evolve(state, ev)
					switch ev := ev.(type) {
					case account.Opened:
						balance = ev.InitialBalance
					case account.Deposited:
						balance += ev.Amount
					case account.Withdrawn:
						balance -= ev.Amount
					}
				}
				if balance < 0 {
					s.problems.add(probInconsistent, "%s: balance %d below zero at version %d (command %s)", k, balance, e.version, e.commandID)
				}
			} else {
				state = nil
			}
			h.states = append(h.states, state)
		}
	}
	// A command's events are one run of versions of one aggregate.
	for id, evs := range m.byCommand {
		if len(evs) == 1 {
			continue
		}
		// Every command of the workload decides exactly one event, so
		// more than one is the command applied again.
		var where []string
		for _, e := range evs {
			where = append(where, fmt.Sprintf("%s/%s v%d (partition %d offset %d)", e.agg, e.id, e.version, e.partition, e.offset))
		}
		s.problems.add(probDuplicated, "command %s has %d events, want 1: %s", id, len(evs), strings.Join(where, ", "))
	}
}

// checkCommands checks each command ID against the ledger, the results and
// the events:
//   - every command record on a commands topic has exactly one result
//     record; records of the same command ID (resends) get the same result
//     again, and the results of one ID all say the same (status, version,
//     events, position);
//   - an accepted result, and every acknowledgement a client got, has its
//     events in the events topic exactly once; a command answered
//     otherwise has none;
//   - every answer a client got equals the result on the topic;
//   - each decision fits the history: an accepted command was decidable
//     on the state before its events, a rejected one was refused by the
//     state at its version, a conflict had another expected version.
func (m *model) checkCommands(s *soak) {
	ids := map[string]bool{}
	for id := range m.commands {
		ids[id] = true
	}
	for id := range m.results {
		ids[id] = true
	}
	for id := range m.byCommand {
		ids[id] = true
	}
	for _, sc := range s.ledger.all() {
		ids[sc.cmd.ID] = true
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		f := &findings{}
		m.checkCommand(s, f, id)
		if f.any() {
			if sc := s.ledger.get(id); sc != nil {
				v := uint64(0)
				if ack := sc.acked(); ack != nil {
					v = ack.Version
				} else if rs := m.results[id]; len(rs) > 0 {
					v = rs[0].Version
				}
				f.forensics = m.forensics(sc.cmd, id, v)
			}
		}
		f.flush(s.problems)
	}
}

// checkCommand checks one command ID; see checkCommands.
func (m *model) checkCommand(s *soak, f *findings, id string) {
	sc := s.ledger.get(id)
	results, evs, nCmd := m.results[id], m.byCommand[id], m.commands[id]
	if sc == nil {
		f.add(probInconsistent, "command ID %q is on the topics (%d command records, %d results, %d events) but no client sent it", id, nCmd, len(results), len(evs))
		return
	}
	c := sc.cmd
	switch {
	case len(results) < nCmd:
		f.add(probLost, "command %s (%s %s) was written %d times to %s but has %d results",
			id, c.Type, c.key(), nCmd, s.names.Commands(c.Agg), len(results))
	case len(results) > nCmd:
		f.add(probDuplicated, "command %s (%s %s) was written %d times to %s but has %d results",
			id, c.Type, c.key(), nCmd, s.names.Commands(c.Agg), len(results))
	}
	var first *result
	if len(results) > 0 {
		first = results[0]
		for i, r := range results[1:] {
			if !r.same(first) {
				f.tag = tagResendDiffers
				f.add(probInconsistent, "command %s (%s %s, sent over %s): result %d differs from the first: %s, then %s",
					id, c.Type, c.key(), sc.via, i+2, first, r)
			}
		}
	}
	for _, a := range sc.answers {
		switch {
		case a.Status != statusAccepted && a.Status != statusRejected && a.Status != statusConflict:
			f.add(probInconsistent, "command %s (%s %s %s): a client got %s: %s", id, c.Type, c.key(), c.Data, a.Via, &a.result)
		case first == nil:
			f.add(probLost, "command %s (%s %s): a client got %s (%s) but the results topic has no result for it", id, c.Type, c.key(), &a.result, a.Via)
		case !a.same(first):
			f.tag = tagResendDiffers
			f.add(probInconsistent, "command %s (%s %s): a client got %s (%s), the results topic says %s", id, c.Type, c.key(), &a.result, a.Via, first)
		}
	}
	if ack := sc.acked(); ack != nil {
		if len(evs) == 0 {
			f.add(probLost, "command %s (%s %s) was acknowledged at version %d (%s) but has no event", id, c.Type, c.key(), ack.Version, ack.Via)
		} else if e := evs[0]; e.version != ack.Version || e.agg+"/"+e.id != c.key() {
			f.add(probInconsistent, "command %s (%s %s) was acknowledged at version %d (%s) but its event is %s/%s v%d",
				id, c.Type, c.key(), ack.Version, ack.Via, e.agg, e.id, e.version)
		}
	}
	if first == nil {
		if len(evs) > 0 {
			f.add(probInconsistent, "command %s (%s %s) has events but no result", id, c.Type, c.key())
		}
		return
	}
	if first.Status != statusAccepted && len(evs) > 0 {
		f.tag = tagRefusedThenApplied
		f.add(probInconsistent, "command %s (%s %s) was answered %s but its event is at %s/%s v%d",
			id, c.Type, c.key(), first, evs[0].agg, evs[0].id, evs[0].version)
		return
	}
	m.checkDecision(f, sc, first, evs)
}

// checkDecision decides c again on the state its result says it saw.
func (m *model) checkDecision(f *findings, sc *sent, r *result, evs []*evRec) {
	c := sc.cmd
	cd := m.codecs[c.Agg]
	cmd, err := cd.CommandJSON(c.Type, c.Data)
	if err != nil {
		f.add(probInconsistent, "command %s: the soak made an undecodable %s: %v", c.ID, c.Type, err)
		return
	}
	h := m.hist[c.key()]
	at := func(v uint64) any {
		if v == 0 {
			return cd.Type.NewState()
		}
		if h == nil || v >= uint64(len(h.states)) {
			return nil
		}
		return h.states[v]
	}
	describe := func() string {
		d := fmt.Sprintf("command %s (%s %s %s", c.ID, c.Type, c.key(), c.Data)
		if c.Expected != nil {
			d += fmt.Sprintf(", expected_version %d", *c.Expected)
		}
		return d + ")"
	}
	switch r.Status {
	case statusAccepted:
		if len(evs) == 0 {
			f.add(probLost, "%s: result %s but no event on the topic", describe(), r)
			return
		}
		before := evs[0].version - 1
		if c.Expected != nil && *c.Expected != before {
			f.add(probInconsistent, "%s was accepted at version %d", describe(), before)
		}
		if len(r.Events) != len(evs) || r.Version != evs[len(evs)-1].version {
			f.add(probInconsistent, "%s: result %s, but the events topic has %d event(s) up to v%d", describe(), r, len(evs), evs[len(evs)-1].version)
		}
		st := at(before)
		if st == nil {
			return // a gap, reported already
		}
		got, err := cd.Type.Decide(st, cmd, time.Now())
		if err != nil {
			f.add(probInconsistent, "%s was accepted at version %d, but the state there refuses it: %v", describe(), before, err)
			return
		}
		if len(got) != len(evs) || got[0].EventType() != evs[0].typ {
			f.add(probInconsistent, "%s: its events are %s…, deciding it again at version %d gives %d events, %s…",
				describe(), evs[0].typ, before, len(got), got[0].EventType())
		}
	case statusRejected:
		if c.Expected != nil && *c.Expected != r.Version {
			f.add(probInconsistent, "%s was rejected at version %d instead of being a conflict", describe(), r.Version)
		}
		st := at(r.Version)
		if st == nil {
			if h == nil || r.Version > h.last() {
				f.add(probInconsistent, "%s was rejected at version %d, which the aggregate never reached", describe(), r.Version)
			}
			return
		}
		if _, err := cd.Type.Decide(st, cmd, time.Now()); !errors.Is(err, aggregates.ErrRejected) {
			f.add(probInconsistent, "%s was rejected at version %d (%s), but the state there gives %v", describe(), r.Version, r.Error, err)
		}
	case statusConflict:
		if c.Expected == nil || *c.Expected == r.Version {
			f.add(probInconsistent, "%s was a conflict at version %d", describe(), r.Version)
		}
	default:
		f.add(probInconsistent, "%s: result %s; the workload sends only valid commands", describe(), r)
	}
}

// Classes of command problems the summary counts.
const (
	tagResendDiffers      = "a resend got another result than the first"
	tagRefusedThenApplied = "refused (rejected or conflict), then applied on a resend"
)

// findings collects one command's problems, so that a command counts once
// per kind of problem however many checks it fails.
type findings struct {
	msgs      [numProbs][]string
	tag       string // the class of the inconsistency, if one is named
	forensics string // where the command's records are (see model.forensics)
}

func (f *findings) any() bool {
	for _, m := range f.msgs {
		if len(m) > 0 {
			return true
		}
	}
	return false
}

func (f *findings) add(kind int, format string, args ...any) {
	f.msgs[kind] = append(f.msgs[kind], fmt.Sprintf(format, args...))
}

func (f *findings) flush(p *problems) {
	for k := range numProbs {
		if len(f.msgs[k]) > 0 {
			tag := ""
			if k == probInconsistent {
				tag = f.tag
			}
			msg := strings.Join(f.msgs[k], "; ")
			if f.forensics != "" {
				msg += " [" + f.forensics + "]"
			}
			p.addTagged(k, tag, "%s", msg)
		}
	}
}
