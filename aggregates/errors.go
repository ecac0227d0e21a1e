package aggregates

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the framework and the runtime return for these
// conditions wraps one of them, so callers branch with errors.Is and read the
// details with errors.As on the typed errors below.
var (
	// ErrRejected marks a domain rejection: the command was understood and
	// refused by the aggregate's rules (insufficient funds, order exists).
	// It is an outcome, not a failure: it is recorded as a result and
	// writes no event.
	ErrRejected = errors.New("strata: command rejected")

	// ErrInvalid marks a command that is malformed independently of any
	// state: a missing field, a negative amount, an unknown type.
	ErrInvalid = errors.New("strata: invalid command")

	// ErrConflict marks an optimistic-concurrency failure: the command
	// expected a version of the aggregate other than the current one.
	ErrConflict = errors.New("strata: version conflict")

	// ErrNotFound marks an aggregate, type or view that does not exist.
	ErrNotFound = errors.New("strata: not found")
)

// RejectedError is a domain rejection with its reason.
type RejectedError struct{ Reason string }

func (e *RejectedError) Error() string { return e.Reason }
func (e *RejectedError) Unwrap() error { return ErrRejected }

// Reject returns a domain rejection whose message is the formatted reason.
// Decide functions return it for every rule a command breaks.
func Reject(format string, args ...any) error {
	return &RejectedError{Reason: fmt.Sprintf(format, args...)}
}

// InvalidError is a malformed command with what is wrong with it.
type InvalidError struct{ Reason string }

func (e *InvalidError) Error() string { return e.Reason }
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// Invalid returns an error wrapping ErrInvalid whose message is the
// formatted reason. Validate methods return it.
func Invalid(format string, args ...any) error {
	return &InvalidError{Reason: fmt.Sprintf(format, args...)}
}

// ConflictError is an expected_version mismatch.
type ConflictError struct {
	ID       string
	Expected uint64
	Actual   uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("version conflict on %s: expected version %d, actual %d", e.ID, e.Expected, e.Actual)
}
func (e *ConflictError) Unwrap() error { return ErrConflict }
