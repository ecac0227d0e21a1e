package schemas

import (
	"encoding/json"
	"fmt"

	"github.com/hamba/avro/v2"
)

// Diff describes what changed between two versions of a record, field by
// field, recursing into nested records: added, removed, renamed (by an
// alias), type or default changed.
func Diff(from, to avro.Schema) []string {
	var out []string
	diffSchema(&out, "", deref(from), deref(to))
	return out
}

func diffSchema(out *[]string, path string, from, to avro.Schema) {
	fr, ok1 := from.(*avro.RecordSchema)
	tr, ok2 := to.(*avro.RecordSchema)
	if !ok1 || !ok2 {
		if from.String() != to.String() {
			*out = append(*out, fmt.Sprintf("~ %s: type %s → %s", orTop(path), typeString(from), typeString(to)))
		}
		return
	}
	if fr.FullName() != tr.FullName() {
		*out = append(*out, fmt.Sprintf("~ %s: record %s → %s (aliases %v)", orTop(path), fr.FullName(), tr.FullName(), tr.Aliases()))
	}
	matched := map[string]bool{}
	for _, tf := range tr.Fields() {
		ff := findField(fr, tf)
		p := join(path, tf.Name())
		if ff == nil {
			*out = append(*out, fmt.Sprintf("+ %s: %s%s", p, typeString(tf.Type()), defaultString(tf)))
			continue
		}
		matched[ff.Name()] = true
		if ff.Name() != tf.Name() {
			*out = append(*out, fmt.Sprintf("~ %s: renamed from %s (aliases %v)", p, ff.Name(), tf.Aliases()))
		}
		if ff.HasDefault() != tf.HasDefault() || ff.HasDefault() && fmt.Sprint(ff.Default()) != fmt.Sprint(tf.Default()) {
			*out = append(*out, fmt.Sprintf("~ %s: default%s →%s", p, defaultOrNone(ff), defaultOrNone(tf)))
		}
		diffSchema(out, p, deref(ff.Type()), deref(tf.Type()))
	}
	for _, ff := range fr.Fields() {
		if !matched[ff.Name()] {
			*out = append(*out, fmt.Sprintf("- %s: %s%s", join(path, ff.Name()), typeString(ff.Type()), defaultString(ff)))
		}
	}
}

func orTop(path string) string {
	if path == "" {
		return "(record)"
	}
	return path
}

func typeString(s avro.Schema) string {
	s = deref(s)
	switch s := s.(type) {
	case avro.NamedSchema:
		return s.FullName()
	case *avro.UnionSchema:
		var names []string
		for _, b := range s.Types() {
			names = append(names, typeString(b))
		}
		return fmt.Sprint(names)
	case *avro.ArraySchema:
		return "array<" + typeString(s.Items()) + ">"
	case *avro.MapSchema:
		return "map<" + typeString(s.Values()) + ">"
	}
	return string(s.Type())
}

func defaultString(f *avro.Field) string {
	if !f.HasDefault() {
		return ""
	}
	return " (default " + jsonString(f.Default()) + ")"
}

func defaultOrNone(f *avro.Field) string {
	if !f.HasDefault() {
		return " none"
	}
	return " " + jsonString(f.Default())
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
