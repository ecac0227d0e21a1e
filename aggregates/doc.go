// Package aggregates is Strata's write-side framework: the vocabulary a
// domain uses to say what its commands, events and state are, and the
// decider that turns a command into events.
//
// A domain is pure. Decide looks at the current state and a command and
// returns the events that record what happened, or an error that says why
// not; Evolve folds one event into the state and never fails. Neither does
// I/O, reads a clock, logs or touches Kafka, Pebble or Avro: the runtime in
// internal/processor does all of that around them, so the same input always
// gives the same output and a domain is tested with plain values.
//
// # Usage
//
// A domain declares its types and one Decider:
//
//	var Decider = aggregates.Decider[State]{
//		Name:     "account",
//		Commands: []aggregates.Command{Open{}, Deposit{}, Withdraw{}},
//		Events:   []aggregates.Event{Opened{}, Deposited{}, Withdrawn{}},
//		Decide:   decide,
//		Evolve:   evolve,
//	}
//
// and the runtime drives it, for each command, as
//
//	state := replay(history)           // Evolve over the stored events
//	events, err := d.Decide(state, cmd, now)
//	// err wrapping ErrRejected: a domain rejection, recorded as a result
//	// events: appended to the aggregate's stream, each one Evolved in
//
// Commands that can be checked without state implement Validator; the
// runtime calls Validate before Decide and answers bad input without
// loading anything.
package aggregates
