package schemas

import (
	"errors"
	"fmt"
	"strings"

	"github.com/strata-es/strata/aggregates"
)

// Bind checks that every command, event and the state of typ have a subject
// in the catalog under schemas/<typ.Name()>/ and that the Go types encode
// and decode with their newest versions. It reports every problem at once.
func (c *Catalog) Bind(typ aggregates.Type) error {
	var problems []error
	check := func(subject string, v any) { c.checkSubject(typ, subject, v, &problems) }
	for _, name := range typ.CommandTypes() {
		v, _ := typ.NewCommand(name)
		check(typ.Name()+"/"+name, v)
	}
	for _, name := range typ.EventTypes() {
		v, _ := typ.NewEvent(name)
		check(typ.Name()+"/"+name, v)
	}
	// The state is stored locally, always in single-object encoding.
	c.Local().checkSubject(typ, typ.Name()+"/state", typ.NewStatePtr(), &problems)
	// Every old version must be readable: by resolution, or through an
	// upcaster.
	for _, s := range c.Subjects() {
		if s.Dir != typ.Name() {
			continue
		}
		for _, v := range s.Versions {
			if v.readErr != nil {
				if _, ok := typ.Upcaster(s.Name, v.N); !ok {
					problems = append(problems, fmt.Errorf("aggregate %s: %w; add an upcaster of %s v%d (aggregates.Upcaster)", typ.Name(), v.readErr, s.Name, v.N))
				}
			}
		}
	}
	for _, u := range typ.Upcasters() {
		s, ok := c.subjects[typ.Name()+"/"+u.Event]
		if !ok || u.From > len(s.Versions) {
			problems = append(problems, fmt.Errorf("aggregate %s: upcaster of %s v%d: there is no schemas/%s/%s.v%d.avsc", typ.Name(), u.Event, u.From, typ.Name(), u.Event, u.From))
		}
	}
	return errors.Join(problems...)
}

// UpcastedBy returns the Exempt of the upcasters of types: a subject's
// version is exempt when the aggregate has an upcaster that reads it.
func UpcastedBy(types ...aggregates.Type) Exempt {
	return func(subject string, from int) bool {
		for _, t := range types {
			if name, ok := strings.CutPrefix(subject, t.Name()+"/"); ok {
				if _, ok := t.Upcaster(name, from); ok {
					return true
				}
			}
		}
		return false
	}
}

func (c *Catalog) checkSubject(typ aggregates.Type, subject string, v any, problems *[]error) {
	if _, ok := c.subjects[subject]; !ok {
		*problems = append(*problems, fmt.Errorf("aggregate %s: no schema for %s: add schemas/%s.v1.avsc", typ.Name(), subject, subject))
		return
	}
	b, err := c.Encode(subject, v)
	if err == nil {
		_, err = c.DecodeSubject(subject, b, v)
	}
	if err != nil {
		*problems = append(*problems, fmt.Errorf("aggregate %s: Go type %T does not match schema %s: %w", typ.Name(), v, subject, err))
	}
}
