package aggregates

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"time"
	"unicode"
	"unicode/utf8"
)

// Command is a request to change one aggregate. CommandType names it on the
// wire (the strata-command-type header, the "type" of an HTTP command) and
// in the schema catalog (schemas/<aggregate>/<CommandType>.v<N>.avsc).
type Command interface{ CommandType() string }

// Event is a fact recorded in an aggregate's stream. EventType names it on
// the wire and in the schema catalog, like CommandType.
type Event interface{ EventType() string }

// Validator is implemented by commands that have rules independent of state.
// Validate returns an error wrapping ErrInvalid (see Invalid).
type Validator interface{ Validate() error }

// Decider is one aggregate type, written as two pure functions over a state
// value S. Commands and events are registered by example (zero values of
// their struct types); the runtime decodes into fresh values of those types
// and always hands Decide and Evolve values, never pointers.
type Decider[S any] struct {
	// Name is the aggregate type: lower case, used in topic names
	// (<ns>.<Name>.events), URLs and the schema catalog.
	Name string
	// Initial is the state before the first event.
	Initial S
	// Decide validates cmd against state and returns the events to append,
	// or an error: a rejection (Reject) for broken rules. It must not
	// modify state in place.
	Decide func(state S, cmd Command, now time.Time) ([]Event, error)
	// Evolve returns the state after ev. It never fails: an event is a
	// fact, and a fact that cannot be applied is a bug in the domain.
	Evolve func(state S, ev Event) S
	// Commands and Events list every type the aggregate handles.
	Commands []Command
	Events   []Event
	// Upcasters read old event versions that schema resolution cannot.
	Upcasters []Upcaster
}

// Type is a Decider with its state type erased, as the runtime sees it.
// Implementations are safe for concurrent use: they hold no mutable state.
type Type interface {
	Name() string
	// NewState returns the initial state.
	NewState() any
	// NewStatePtr returns a pointer to a fresh initial state, for decoding.
	NewStatePtr() any
	Decide(state any, cmd Command, now time.Time) ([]Event, error)
	Evolve(state any, ev Event) any
	// NewCommand returns a pointer to a fresh command of the named type.
	NewCommand(name string) (any, bool)
	// NewEvent returns a pointer to a fresh event of the named type.
	NewEvent(name string) (any, bool)
	CommandTypes() []string
	EventTypes() []string
	// Upcaster returns the upcaster of version from of event, if any.
	Upcaster(event string, from int) (Upcaster, bool)
	Upcasters() []Upcaster
}

// Register checks a Decider and returns it as a Type. It reports every
// problem at once: a bad name, missing functions, duplicate or non-struct
// command and event types.
func Register[S any](d Decider[S]) (Type, error) {
	t := &typed[S]{d: d, commands: map[string]reflect.Type{}, events: map[string]reflect.Type{}}
	var problems []error
	if err := CheckName(d.Name); err != nil {
		problems = append(problems, fmt.Errorf("aggregate name %q: %w", d.Name, err))
	}
	if d.Decide == nil || d.Evolve == nil {
		problems = append(problems, fmt.Errorf("aggregate %q: Decide and Evolve are required", d.Name))
	}
	add := func(kind, name string, v any, into map[string]reflect.Type) {
		rt := reflect.TypeOf(v)
		if rt == nil || rt.Kind() != reflect.Struct {
			problems = append(problems, fmt.Errorf("aggregate %q: %s %q must be a struct value, got %v", d.Name, kind, name, rt))
			return
		}
		if _, dup := into[name]; dup {
			problems = append(problems, fmt.Errorf("aggregate %q: %s type %q registered twice", d.Name, kind, name))
			return
		}
		if err := checkTypeName(name); err != nil {
			problems = append(problems, fmt.Errorf("aggregate %q: %s type %q: %w", d.Name, kind, name, err))
		}
		into[name] = rt
	}
	for _, c := range d.Commands {
		add("command", c.CommandType(), c, t.commands)
	}
	for _, e := range d.Events {
		add("event", e.EventType(), e, t.events)
	}
	t.upcasters = map[upKey]Upcaster{}
	for _, u := range d.Upcasters {
		k := upKey{u.Event, u.From}
		switch _, dup := t.upcasters[k]; {
		case u.Up == nil || u.From < 1:
			problems = append(problems, fmt.Errorf("aggregate %q: upcaster of %s v%d needs From >= 1 and Up", d.Name, u.Event, u.From))
		case dup:
			problems = append(problems, fmt.Errorf("aggregate %q: two upcasters of %s v%d", d.Name, u.Event, u.From))
		}
		t.upcasters[k] = u
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return t, nil
}

// MustRegister is Register that panics, for package-level declarations of
// the built-in domains whose registration is checked by their tests.
func MustRegister[S any](d Decider[S]) Type {
	t, err := Register(d)
	if err != nil {
		panic(err)
	}
	return t
}

type typed[S any] struct {
	d         Decider[S]
	commands  map[string]reflect.Type
	events    map[string]reflect.Type
	upcasters map[upKey]Upcaster
}

type upKey struct {
	event string
	from  int
}

func (t *typed[S]) Upcaster(event string, from int) (Upcaster, bool) {
	u, ok := t.upcasters[upKey{event, from}]
	return u, ok
}

func (t *typed[S]) Upcasters() []Upcaster { return t.d.Upcasters }

func (t *typed[S]) Name() string     { return t.d.Name }
func (t *typed[S]) NewState() any    { return t.d.Initial }
func (t *typed[S]) NewStatePtr() any { s := t.d.Initial; return &s }
func (t *typed[S]) Evolve(state any, ev Event) any {
	return t.d.Evolve(state.(S), Deref(ev).(Event))
}

func (t *typed[S]) Decide(state any, cmd Command, now time.Time) ([]Event, error) {
	cmd = Deref(cmd).(Command)
	if v, ok := cmd.(Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	return t.d.Decide(state.(S), cmd, now)
}

func (t *typed[S]) NewCommand(name string) (any, bool) { return newOf(t.commands, name) }
func (t *typed[S]) NewEvent(name string) (any, bool)   { return newOf(t.events, name) }
func (t *typed[S]) CommandTypes() []string             { return sortedKeys(t.commands) }
func (t *typed[S]) EventTypes() []string               { return sortedKeys(t.events) }

func newOf(m map[string]reflect.Type, name string) (any, bool) {
	rt, ok := m[name]
	if !ok {
		return nil, false
	}
	return reflect.New(rt).Interface(), true
}

func sortedKeys(m map[string]reflect.Type) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Deref returns the value a pointer points to, and v itself otherwise, so
// that decoders can fill pointers while domains switch on values.
func Deref(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		return rv.Elem().Interface()
	}
	return v
}

// CheckName reports whether s is a valid aggregate or view name: 1 to 64
// characters of lower-case letters, digits and '-', starting with a letter.
// Names become parts of topic names and URLs.
func CheckName(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("must be 1 to 64 characters")
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r == '-' && i > 0 || r >= '0' && r <= '9' && i > 0
		if !ok {
			return fmt.Errorf("must be lower-case letters, digits and '-', starting with a letter")
		}
	}
	return nil
}

func checkTypeName(s string) error {
	r, _ := utf8.DecodeRuneInString(s)
	if s == "" || !unicode.IsUpper(r) {
		return fmt.Errorf("must start with an upper-case letter (it is an Avro record name)")
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return fmt.Errorf("must be letters, digits and '_' (it is an Avro record name)")
		}
	}
	return nil
}
