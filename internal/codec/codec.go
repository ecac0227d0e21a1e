// Package codec encodes and decodes an aggregate type's commands, events and
// state with the schema catalog, and decodes JSON from outside strictly.
package codec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/schemas"
)

// Codec encodes and decodes one aggregate type's commands, events and state
// with the schema catalog. It is safe for concurrent use.
type Codec struct {
	Type    aggregates.Type
	Catalog *schemas.Catalog
}

// CommandJSON decodes a command of the named type from JSON. Unknown
// fields, wrong types and trailing data are errors wrapping
// aggregates.ErrInvalid.
func (c Codec) CommandJSON(name string, data []byte) (aggregates.Command, error) {
	v, ok := c.Type.NewCommand(name)
	if !ok {
		return nil, aggregates.Invalid("unknown command type %q for aggregate %s (known: %v)", name, c.Type.Name(), c.Type.CommandTypes())
	}
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	if err := StrictJSON(data, v); err != nil {
		return nil, aggregates.Invalid("%s data: %v", name, err)
	}
	return aggregates.Deref(v).(aggregates.Command), nil
}

// CommandAvro decodes a command from Avro single-object encoding; the
// fingerprint says its type.
func (c Codec) CommandAvro(data []byte) (aggregates.Command, error) {
	ver, body, err := c.Catalog.Parse(data)
	if err != nil {
		return nil, aggregates.Invalid("%v", err)
	}
	if ver.Subject.Dir != c.Type.Name() {
		return nil, aggregates.Invalid("payload is a %s, not a command of %s", ver.Subject, c.Type.Name())
	}
	v, ok := c.Type.NewCommand(ver.Subject.Name)
	if !ok {
		return nil, aggregates.Invalid("payload is a %s, not a command of %s", ver.Subject, c.Type.Name())
	}
	if err := c.Catalog.DecodeInput(ver, body, v); err != nil {
		return nil, aggregates.Invalid("%v", err)
	}
	return aggregates.Deref(v).(aggregates.Command), nil
}

// EncodeEvent encodes an event with its newest schema.
func (c Codec) EncodeEvent(ev aggregates.Event) ([]byte, error) {
	return c.Catalog.Encode(c.Type.Name()+"/"+ev.EventType(), ev)
}

// DecodeEvents decodes a stored event written with any known version of
// its schema: resolved into the newest version, or passed through the
// aggregate's upcasters when one reads that version. It usually returns one
// event; an upcaster may split one into several, or drop it.
func (c Codec) DecodeEvents(data []byte) ([]aggregates.Event, *schemas.Version, error) {
	ver, body, err := c.Catalog.Parse(data)
	if err != nil {
		return nil, nil, err
	}
	if ver.Subject.Dir != c.Type.Name() {
		return nil, ver, fmt.Errorf("%w: %s is not an event of %s", schemas.ErrUnexpectedSubject, ver.Subject, c.Type.Name())
	}
	if _, ok := c.Type.Upcaster(ver.Subject.Name, ver.N); ok {
		m, err := c.Catalog.DecodeGeneric(ver, body)
		if err != nil {
			return nil, ver, err
		}
		evs, err := c.upcast(ver.Subject.Name, ver.N, m, 0)
		return evs, ver, err
	}
	ev, err := c.decodeAs(ver, body)
	if err != nil {
		return nil, ver, err
	}
	return []aggregates.Event{ev}, ver, nil
}

// DecodeEvent is DecodeEvents for callers that need exactly one event.
func (c Codec) DecodeEvent(data []byte) (aggregates.Event, *schemas.Version, error) {
	evs, ver, err := c.DecodeEvents(data)
	if err != nil {
		return nil, ver, err
	}
	if len(evs) != 1 {
		return nil, ver, fmt.Errorf("%s v%d upcasts to %d events, want 1", ver.Subject, ver.N, len(evs))
	}
	return evs[0], ver, nil
}

func (c Codec) decodeAs(ver *schemas.Version, body []byte) (aggregates.Event, error) {
	v, ok := c.Type.NewEvent(ver.Subject.Name)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not an event of %s (an event type no longer in the code needs an upcaster)", schemas.ErrUnexpectedSubject, ver.Subject, c.Type.Name())
	}
	if err := c.Catalog.Decode(ver, body, v); err != nil {
		return nil, err
	}
	return aggregates.Deref(v).(aggregates.Event), nil
}

// maxUpcasts bounds a chain of upcasters, in case two of them loop.
const maxUpcasts = 64

func (c Codec) upcast(event string, from int, data map[string]any, depth int) ([]aggregates.Event, error) {
	if depth > maxUpcasts {
		return nil, fmt.Errorf("upcasting %s v%d: more than %d steps; do two upcasters loop?", event, from, maxUpcasts)
	}
	u, _ := c.Type.Upcaster(event, from)
	outs, err := u.Up(data)
	if err != nil {
		return nil, fmt.Errorf("upcast %s v%d: %w", event, from, err)
	}
	var evs []aggregates.Event
	for _, o := range outs {
		// The error spells the subject out again rather than keep this
		// concatenation, which then does not escape and stays on the stack.
		s, ok := c.Catalog.Subject(c.Type.Name() + "/" + o.Type)
		if !ok || o.Version < 1 || o.Version > len(s.Versions) {
			return nil, fmt.Errorf("upcast %s v%d: returned %s/%s v%d, which has no schema file", event, from, c.Type.Name(), o.Type, o.Version)
		}
		if _, ok := c.Type.Upcaster(o.Type, o.Version); ok {
			more, err := c.upcast(o.Type, o.Version, o.Data, depth+1)
			if err != nil {
				return nil, err
			}
			evs = append(evs, more...)
			continue
		}
		ver := s.Versions[o.Version-1]
		b, err := c.Catalog.EncodeBody(ver, o.Data)
		if err != nil {
			return nil, fmt.Errorf("upcast %s v%d: its %s does not fit %s: %w", event, from, o.Type, ver.File, err)
		}
		ev, err := c.decodeAs(ver, b)
		if err != nil {
			return nil, fmt.Errorf("upcast %s v%d: %w", event, from, err)
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// EncodeState encodes a state value with the newest state schema.
func (c Codec) EncodeState(state any) ([]byte, error) {
	return c.Catalog.Local().Encode(c.Type.Name()+"/state", state)
}

// DecodeState decodes a stored state; nil data is the initial state.
func (c Codec) DecodeState(data []byte) (any, error) {
	if data == nil {
		return c.Type.NewState(), nil
	}
	p := c.Type.NewStatePtr()
	if _, err := c.Catalog.DecodeSubject(c.Type.Name()+"/state", data, p); err != nil {
		return nil, err
	}
	return aggregates.Deref(p), nil
}

// StrictJSON decodes exactly one JSON value into v, refusing invalid UTF-8
// (which encoding/json would silently turn into U+FFFD, changing the
// sender's text), unknown fields and trailing data.
func StrictJSON(data []byte, v any) error {
	if !utf8.Valid(data) {
		return fmt.Errorf("not valid UTF-8 at byte %d", invalidUTF8At(data))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("unexpected data after the JSON value")
	}
	return nil
}

// invalidUTF8At returns the offset of data's first invalid UTF-8 sequence.
func invalidUTF8At(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(data)
}
