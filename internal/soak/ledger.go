package soak

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Statuses of a command result (processor.Status*).
const (
	statusAccepted = "accepted"
	statusRejected = "rejected"
	statusConflict = "conflict"
	statusInvalid  = "invalid"
)

// result is a command's outcome as Strata publishes it: the value of a
// results-topic record and the body of an HTTP answer. Only the fields the
// checks compare; the soak decodes it itself rather than sharing the
// processor's type, so that a change there shows up here as a difference.
type result struct {
	CommandID   string     `json:"command_id"`
	Aggregate   string     `json:"aggregate"`
	AggregateID string     `json:"aggregate_id"`
	Status      string     `json:"status"`
	Version     uint64     `json:"version"`
	Events      []eventRef `json:"events"`
	Position    string     `json:"position"`
	Error       string     `json:"error"`

	// Where the record was on the results topic (not in the JSON): for
	// the forensics of a problem.
	at recordAt `json:"-"`
}

// recordAt is where a record sat on its topic and which producer wrote
// it: the forensics that tie a problem to a transaction (and, with the
// instances' debug logs, to the instance that committed it).
type recordAt struct {
	topic         string
	partition     int32
	offset        int64
	producerID    int64
	producerEpoch int16
	timestamp     time.Time
	commandOffset string // the strata-command-offset header of a result
}

func atOf(r *kgo.Record) recordAt {
	return recordAt{topic: r.Topic, partition: r.Partition, offset: r.Offset,
		producerID: r.ProducerID, producerEpoch: r.ProducerEpoch, timestamp: r.Timestamp}
}

func (a recordAt) String() string {
	s := fmt.Sprintf("%s/%d offset %d (producer %d epoch %d, %s", a.topic, a.partition, a.offset,
		a.producerID, a.producerEpoch, a.timestamp.UTC().Format("15:04:05.000"))
	if a.commandOffset != "" {
		s += ", command offset " + a.commandOffset
	}
	return s + ")"
}

type eventRef struct {
	Type    string `json:"type"`
	Version uint64 `json:"version"`
}

// same reports whether two results of one command ID say the same thing:
// status, aggregate, version, events and position (not the error text nor
// the timestamp).
func (r *result) same(o *result) bool {
	return r.Status == o.Status && r.AggregateID == o.AggregateID && r.Version == o.Version &&
		r.Position == o.Position && slices.Equal(r.Events, o.Events)
}

func (r *result) String() string {
	var evs []string
	for _, e := range r.Events {
		evs = append(evs, fmt.Sprintf("%s@v%d", e.Type, e.Version))
	}
	s := fmt.Sprintf("%s v%d", r.Status, r.Version)
	if len(evs) > 0 {
		s += " [" + strings.Join(evs, " ") + "]"
	}
	if r.Error != "" {
		s += fmt.Sprintf(" (%s)", r.Error)
	}
	return s
}

// answer is a result a client received, and how.
type answer struct {
	result
	Via string // "HTTP 200 from instance 2", "results topic"
	At  time.Time
}

// sent is one command ID and everything that happened to it on the
// client side.
type sent struct {
	cmd      *command
	via      string // how it was first sent: "http" or "kafka"
	first    time.Time
	attempts int            // sends, including retries and deliberate resends
	failures map[string]int // attempts that got no answer, by kind
	answers  []*answer
	resent   int // deliberate resends after an answer
}

// acked reports whether a client was told the command was accepted.
func (s *sent) acked() *answer {
	for _, a := range s.answers {
		if a.Status == statusAccepted {
			return a
		}
	}
	return nil
}

// ledger holds every command the clients sent. Safe for concurrent use.
type ledger struct {
	mu   sync.Mutex
	byID map[string]*sent
	// done is a ring of commands with an answer, for late resends.
	done []*sent
	next int

	sent, acked, rejected, conflicts, unanswered atomic.Int64
	http, kafka, resends, retries                atomic.Int64
	failures                                     atomic.Int64
}

func newLedger() *ledger { return &ledger{byID: map[string]*sent{}} }

func (l *ledger) add(c *command, via string) *sent {
	s := &sent{cmd: c, via: via, first: time.Now(), failures: map[string]int{}}
	l.mu.Lock()
	l.byID[c.ID] = s
	l.mu.Unlock()
	l.sent.Add(1)
	if via == "http" {
		l.http.Add(1)
	} else {
		l.kafka.Add(1)
	}
	return s
}

func (l *ledger) attempt(s *sent) {
	l.mu.Lock()
	s.attempts++
	l.mu.Unlock()
}

func (l *ledger) failed(s *sent, kind string) {
	l.mu.Lock()
	s.failures[kind]++
	l.mu.Unlock()
	l.failures.Add(1)
}

// answered records an answer; first says it is the command's first one.
func (l *ledger) answered(s *sent, a *answer) {
	l.mu.Lock()
	first := len(s.answers) == 0
	s.answers = append(s.answers, a)
	if first {
		const ring = 4096
		if len(l.done) < ring {
			l.done = append(l.done, s)
		} else {
			l.done[l.next] = s
			l.next = (l.next + 1) % ring
		}
	}
	l.mu.Unlock()
	if !first {
		return
	}
	switch a.Status {
	case statusAccepted:
		l.acked.Add(1)
	case statusRejected:
		l.rejected.Add(1)
	case statusConflict:
		l.conflicts.Add(1)
	}
}

// old returns a random command answered a while ago, for a late resend.
func (l *ledger) old(rng *rand.Rand) *sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.done) == 0 {
		return nil
	}
	s := l.done[rng.IntN(len(l.done))]
	s.resent++
	return s
}

func (l *ledger) get(id string) *sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byID[id]
}

// all returns every command sent, sorted by ID.
func (l *ledger) all() []*sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*sent, 0, len(l.byID))
	for _, s := range l.byID {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *sent) int { return strings.Compare(a.cmd.ID, b.cmd.ID) })
	return out
}
