// Package registry registers Strata's schemas in a Confluent-compatible
// schema registry, so that consumers that expect that registry's wire
// format can read Strata's topics.
package registry

import (
	"context"
	"fmt"

	"github.com/strata-es/strata/schemas"
	"github.com/twmb/franz-go/pkg/sr"
)

// SubjectName is the registry subject of a catalog subject: the record's
// full name (the record name strategy), since one events topic carries many
// record types.
func SubjectName(s *schemas.Subject) string {
	return schemas.Namespace + "." + s.Dir + "." + recordName(s.Name)
}

func recordName(name string) string {
	if name == "state" {
		return "State"
	}
	return name
}

// Registered is one version as the registry knows it.
type Registered struct {
	Subject  string
	Version  *schemas.Version
	ID       int
	Level    sr.CompatibilityLevel
	Previous int // the registry's version number
}

// Register sets each subject's compatibility level to its mode (NONE where
// an upcaster bridges versions the registry would refuse: the registry
// cannot know about upcasters) and registers every version in order. It is
// idempotent: registering again returns the same IDs. The returned Registry
// maps IDs to versions and fetches unknown ones from the registry.
func Register(ctx context.Context, cl *sr.Client, cat *schemas.Catalog, exempt schemas.Exempt) (*schemas.Registry, []Registered, error) {
	reg := NewResolver(ctx, cl)
	var out []Registered
	for _, s := range cat.Subjects() {
		name := SubjectName(s)
		var level sr.CompatibilityLevel
		if err := level.UnmarshalText([]byte(cat.Mode(s.String()))); err != nil {
			return nil, nil, err
		}
		for _, v := range s.Versions[:len(s.Versions)-1] {
			if exempt != nil && exempt(s.String(), v.N) {
				level = sr.CompatNone
			}
		}
		for _, res := range cl.SetCompatibility(ctx, sr.SetCompatibility{Level: level}, name) {
			if res.Err != nil {
				return nil, nil, fmt.Errorf("set compatibility of %s to %s: %w", name, level, res.Err)
			}
		}
		for _, v := range s.Versions {
			ss, err := cl.CreateSchema(ctx, name, sr.Schema{Schema: v.Text, Type: sr.TypeAvro})
			if err != nil {
				return nil, nil, fmt.Errorf("register %s as %s: %w", v.File, name, err)
			}
			reg.Add(ss.ID, v)
			out = append(out, Registered{Subject: name, Version: v, ID: ss.ID, Level: level, Previous: ss.Version})
		}
	}
	return reg, out, nil
}

// NewResolver returns a Registry that resolves IDs it has not seen by
// asking the registry for their schema.
func NewResolver(ctx context.Context, cl *sr.Client) *schemas.Registry {
	return schemas.NewRegistry(func(id int) (string, error) {
		s, err := cl.SchemaByID(ctx, id)
		if err != nil {
			return "", err
		}
		return s.Schema, nil
	})
}
