package schemas

import (
	"errors"
	"fmt"

	"github.com/strata-es/strata/aggregates"
)

// Bind checks that every command, event and the state of typ have a subject
// in the catalog under schemas/<typ.Name()>/ and that the Go types encode
// and decode with their newest versions. It reports every problem at once.
func (c *Catalog) Bind(typ aggregates.Type) error {
	var problems []error
	check := func(subject string, v any) {
		if _, ok := c.subjects[subject]; !ok {
			problems = append(problems, fmt.Errorf("aggregate %s: no schema for %s: add schemas/%s.v1.avsc", typ.Name(), subject, subject))
			return
		}
		b, err := c.Encode(subject, v)
		if err == nil {
			_, err = c.DecodeSubject(subject, b, v)
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("aggregate %s: Go type %T does not match schema %s: %w", typ.Name(), v, subject, err))
		}
	}
	for _, name := range typ.CommandTypes() {
		v, _ := typ.NewCommand(name)
		check(typ.Name()+"/"+name, v)
	}
	for _, name := range typ.EventTypes() {
		v, _ := typ.NewEvent(name)
		check(typ.Name()+"/"+name, v)
	}
	check(typ.Name()+"/state", typ.NewStatePtr())
	return errors.Join(problems...)
}
