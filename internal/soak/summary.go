package soak

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Summary is what a soak did and found.
type Summary struct {
	Config   Config
	Dir      string        // the run's data and logs, when kept
	Duration time.Duration // of the load
	// Settled is how long the cluster took, after the load, to be ready
	// with every command processed; Checked how long the checks took.
	Settled, Checked time.Duration
	Err              error // the soak could not finish

	Sent, SentHTTP, SentKafka                         int64
	Acked, Rejected, Conflicts, Unanswered            int64
	Resends, Retries, FailedAttempts, RYWReads        int64
	Kills, Wipes, WipesKeptID, Pauses, BrokerRestarts int64
	UnexpectedExits                                   []string
	Events, Aggregates, Results, Commands, DLQ        int
	Lost, Duplicated, Inconsistent                    int
	Problems                                          [numProbs][]string
	Tags                                              [numProbs]map[string]int
	InstancesChecked, AggregatesPerInstanceCheck      int
	// ErrorLogs are the first lines logged at level ERROR by each process,
	// shown when the soak fails.
	ErrorLogs []string
}

// Passed reports whether the soak ran to the end and found no problem.
func (s *Summary) Passed() bool {
	return s.Err == nil && s.Lost == 0 && s.Duplicated == 0 && s.Inconsistent == 0
}

func (s *soak) fill(sum *Summary, m *model) {
	l := s.ledger
	sum.Sent, sum.SentHTTP, sum.SentKafka = l.sent.Load(), l.http.Load(), l.kafka.Load()
	sum.Acked, sum.Rejected, sum.Conflicts, sum.Unanswered = l.acked.Load(), l.rejected.Load(), l.conflicts.Load(), l.unanswered.Load()
	sum.Resends, sum.Retries, sum.FailedAttempts, sum.RYWReads = l.resends.Load(), l.retries.Load(), l.failures.Load(), s.stats.rywReads.Load()
	sum.Kills, sum.Wipes, sum.WipesKeptID = s.stats.kills.Load(), s.stats.wipes.Load(), s.stats.wipesKeptID.Load()
	sum.Pauses, sum.BrokerRestarts = s.stats.pauses.Load(), s.stats.brokerRestarts.Load()
	sum.UnexpectedExits = s.cluster.unexpectedExits()
	if m != nil {
		sum.Events, sum.Aggregates, sum.Results, sum.Commands, sum.DLQ = m.nEvents, len(m.hist), m.nResults, m.nCommands, m.nDLQ
		sum.InstancesChecked, sum.AggregatesPerInstanceCheck = len(s.cluster.inst), int(s.stats.checkedAggregates.Load())
	}
	for _, in := range s.cluster.inst {
		for _, l := range errorLines(in.logPath, 5) {
			sum.ErrorLogs = append(sum.ErrorLogs, in.name+": "+l)
		}
	}
	s.problems.mu.Lock()
	defer s.problems.mu.Unlock()
	sum.Lost, sum.Duplicated, sum.Inconsistent = s.problems.counts[probLost], s.problems.counts[probDuplicated], s.problems.counts[probInconsistent]
	for k := range numProbs {
		sum.Problems[k] = append([]string(nil), s.problems.first[k]...)
		sum.Tags[k] = maps.Clone(s.problems.tags[k])
	}
}

// Print writes the summary for people.
func (s *Summary) Print(w io.Writer) {
	c := s.Config
	broker := "embedded kfake broker (own process)"
	if len(c.Brokers) > 0 {
		broker = strings.Join(c.Brokers, ",")
	}
	fmt.Fprintf(w, "\n== strata soak: seed %d, %s, %d instance(s), %d clients (%d HTTP, %d Kafka), %d partitions\n",
		c.Seed, broker, c.Instances, c.Clients, (c.Clients+1)/2, c.Clients/2, c.Partitions)
	fmt.Fprintf(w, "duration     %s of load, %s to settle, %s of checks\n",
		s.Duration.Round(100*time.Millisecond), s.Settled.Round(100*time.Millisecond), s.Checked.Round(100*time.Millisecond))
	fmt.Fprintf(w, "commands     %d sent (%d HTTP, %d Kafka), %d acknowledged, %d rejected, %d conflicts, %d never answered\n",
		s.Sent, s.SentHTTP, s.SentKafka, s.Acked, s.Rejected, s.Conflicts, s.Unanswered)
	fmt.Fprintf(w, "resends      %d deliberate resends of an answered command ID, %d retries after %d failed attempts (503, 504, refused, timeouts)\n",
		s.Resends, s.Retries, s.FailedAttempts)
	fmt.Fprintf(w, "chaos        %d kills (%d on an empty data dir, %d of them keeping their --instance-id), %d pauses, %d broker restarts, %d unexpected exits\n",
		s.Kills, s.Wipes, s.WipesKeptID, s.Pauses, s.BrokerRestarts, len(s.UnexpectedExits))
	fmt.Fprintf(w, "topics       %d events of %d aggregates, %d results, %d command records, %d dead-lettered\n",
		s.Events, s.Aggregates, s.Results, s.Commands, s.DLQ)
	fmt.Fprintf(w, "served       %d instance(s) × %d aggregates and every view row checked; %d read-your-writes reads\n",
		s.InstancesChecked, s.AggregatesPerInstanceCheck, s.RYWReads)
	for _, e := range s.UnexpectedExits {
		fmt.Fprintf(w, "unexpected exit: %s\n", e)
	}
	fmt.Fprintf(w, "lost %d, duplicated %d, inconsistent %d\n", s.Lost, s.Duplicated, s.Inconsistent)
	counts := [numProbs]int{s.Lost, s.Duplicated, s.Inconsistent}
	for k := range numProbs {
		for _, tag := range slices.Sorted(maps.Keys(s.Tags[k])) {
			fmt.Fprintf(w, "  %s, of which %d: %s\n", probNames[k], s.Tags[k][tag], tag)
		}
	}
	for k := range numProbs {
		for _, p := range s.Problems[k] {
			fmt.Fprintf(w, "  %s: %s\n", probNames[k], p)
		}
		if n := counts[k] - len(s.Problems[k]); n > 0 {
			fmt.Fprintf(w, "  %s: … and %d more\n", probNames[k], n)
		}
	}
	if s.Err != nil {
		fmt.Fprintf(w, "error: %v\n", s.Err)
	}
	if !s.Passed() {
		for _, l := range s.ErrorLogs {
			fmt.Fprintf(w, "  logged: %s\n", l)
		}
	}
	if s.Dir != "" {
		fmt.Fprintf(w, "data and logs kept in %s\n", s.Dir)
	}
	if s.Passed() {
		fmt.Fprintln(w, "PASS")
	} else {
		fmt.Fprintln(w, "FAIL")
	}
}
