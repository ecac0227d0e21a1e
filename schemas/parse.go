package schemas

import (
	"encoding/json"
	"fmt"

	"github.com/hamba/avro/v2"
)

// parseSchema parses schema text from outside the binary (an .avsc file, a
// registry's answer) with a fresh cache: hamba's shared cache would let one
// text's named types leak into another's. hamba/avro v2.31 panics on some
// texts instead of returning an error (a field whose type is the empty
// union [] and has a default indexes the union's first type), so the shapes
// known to do that are refused first with a message that says where, and a
// panic of any other shape becomes an error too: a bad file is never a
// crash.
func parseSchema(data []byte) (avro.Schema, error) {
	var doc any
	if json.Unmarshal(data, &doc) == nil {
		if where := findEmptyUnion(doc, ""); where != "" {
			return nil, fmt.Errorf("%s is an empty union []: a union needs at least one type", where)
		}
	}
	return parseGuarded(data)
}

// parseGuarded is avro.ParseBytesWithCache with a fresh cache, and a panic
// made an error.
func parseGuarded(data []byte) (sch avro.Schema, err error) {
	defer func() {
		if r := recover(); r != nil {
			sch, err = nil, fmt.Errorf("the Avro parser (hamba/avro) failed on this schema: %v; simplify the schema around the last change, and report the schema upstream", r)
		}
	}()
	return avro.ParseBytesWithCache(data, "", &avro.SchemaCache{})
}

// findEmptyUnion returns the path of the first empty union in a schema's
// JSON (a [] where a type goes: a "type", "items" or "values", or inside a
// union; the whole schema being [] does not count), or "" if there is none.
// Paths read like fields[2].type.items.
func findEmptyUnion(v any, at string) string {
	name := func(key string) string {
		if at == "" {
			return key
		}
		return at + "." + key
	}
	switch v := v.(type) {
	case []any:
		if len(v) == 0 {
			// A whole schema that is [] parses (an empty union, harmless
			// until a field uses it with a default), and the catalog's
			// "top-level type must be a record" says more about it.
			return at
		}
		for i, t := range v {
			if w := findEmptyUnion(t, fmt.Sprintf("%s[%d]", at, i)); w != "" {
				return w
			}
		}
	case map[string]any:
		if fields, ok := v["fields"].([]any); ok {
			for i, f := range fields {
				if f, ok := f.(map[string]any); ok {
					if w := findEmptyUnion(f["type"], fmt.Sprintf("%s[%d].type", name("fields"), i)); w != "" {
						return w
					}
				}
			}
		}
		for _, k := range []string{"type", "items", "values"} {
			if t, ok := v[k]; ok {
				if w := findEmptyUnion(t, name(k)); w != "" {
					return w
				}
			}
		}
	}
	return ""
}
