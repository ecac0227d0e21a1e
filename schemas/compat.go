package schemas

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"
)

// Problem is one reason a reader schema cannot read what a writer schema
// wrote, at a path inside the record ("owner", "items[].qty").
type Problem struct {
	Path string
	// Kind says what broke, in the reader/writer terms of the Avro
	// specification's resolution rules.
	Kind ProblemKind
	// Detail names the types, symbols or sizes involved.
	Detail string
}

// ProblemKind classifies a Problem.
type ProblemKind int

// The kinds of Problem.
const (
	// FieldMissing: the reader has a field without default that the
	// writer does not write.
	FieldMissing ProblemKind = iota + 1
	// TypeMismatch: the writer's type cannot be read as the reader's
	// (no promotion such as int→long→float→double or string↔bytes).
	TypeMismatch
	// SymbolMissing: the writer can write an enum symbol the reader does
	// not have, and the reader's enum has no default.
	SymbolMissing
	// NameMismatch: named types (records, enums, fixed) whose names and
	// aliases do not match.
	NameMismatch
	// SizeMismatch: fixed types of different sizes.
	SizeMismatch
	// BranchMissing: a writer union branch no reader type can read.
	BranchMissing
)

func (p Problem) String() string {
	if p.Path == "" {
		return p.Detail
	}
	return p.Path + ": " + p.Detail
}

// CanRead reports every reason reader cannot read data written with
// writer, following the Avro specification's schema resolution rules:
// promotions, unions, enum defaults, aliases of fields and named types,
// nested records, arrays, maps, fixed and named-type references. An empty
// result means reader can read everything writer writes.
func CanRead(reader, writer avro.Schema) []Problem {
	c := &checker{seen: map[[2]string]bool{}}
	c.check("", deref(reader), deref(writer))
	return c.problems
}

type checker struct {
	problems []Problem
	// seen breaks recursion through recursive named types: a pair of
	// named types under check is assumed to match while checking it.
	seen map[[2]string]bool
}

func (c *checker) add(path string, kind ProblemKind, format string, args ...any) {
	c.problems = append(c.problems, Problem{Path: path, Kind: kind, Detail: fmt.Sprintf(format, args...)})
}

func deref(s avro.Schema) avro.Schema {
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema()
	}
	return s
}

func typeName(s avro.Schema) string {
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	return string(s.Type())
}

// promotions maps a writer primitive to the reader primitives that can
// read it, per the specification.
var promotions = map[avro.Type][]avro.Type{
	avro.Int:    {avro.Long, avro.Float, avro.Double},
	avro.Long:   {avro.Float, avro.Double},
	avro.Float:  {avro.Double},
	avro.String: {avro.Bytes},
	avro.Bytes:  {avro.String},
}

// matches reports whether reader and writer are of the same kind (after
// promotion) and, for named types, of matching names: the test the
// specification uses to pick a union branch. It does not recurse.
func matches(reader, writer avro.Schema) bool {
	r, w := deref(reader), deref(writer)
	if r.Type() == w.Type() {
		switch rs := r.(type) {
		case avro.NamedSchema:
			return namesMatch(rs, w.(avro.NamedSchema))
		}
		return true
	}
	return slices.Contains(promotions[w.Type()], r.Type())
}

func namesMatch(reader, writer avro.NamedSchema) bool {
	if reader.FullName() == writer.FullName() || reader.Name() == writer.Name() {
		return true
	}
	for _, a := range reader.Aliases() {
		if a == writer.FullName() || a == writer.Name() {
			return true
		}
	}
	return false
}

func (c *checker) check(path string, r, w avro.Schema) {
	r, w = deref(r), deref(w)
	// A writer union: every branch it may write must be readable.
	if wu, ok := w.(*avro.UnionSchema); ok {
		for _, b := range wu.Types() {
			if ru, ok := r.(*avro.UnionSchema); ok {
				if rb := pick(ru, b); rb != nil {
					c.check(path, rb, b)
				} else {
					c.add(path, BranchMissing, "writer union branch %s has no matching type in the reader's union %s", typeName(b), unionNames(ru))
				}
				continue
			}
			if matches(r, b) {
				c.check(path, r, b)
			} else {
				c.add(path, BranchMissing, "writer union branch %s cannot be read as %s", typeName(b), typeName(r))
			}
		}
		return
	}
	// A reader union, writer not: the first matching branch reads it.
	if ru, ok := r.(*avro.UnionSchema); ok {
		if rb := pick(ru, w); rb != nil {
			c.check(path, rb, w)
		} else {
			c.add(path, TypeMismatch, "writer type %s matches no branch of the reader's union %s", typeName(w), unionNames(ru))
		}
		return
	}
	if !matches(r, w) {
		if rn, ok := r.(avro.NamedSchema); ok && r.Type() == w.Type() {
			c.add(path, NameMismatch, "%s %s cannot read %s %s: names differ and no alias matches", r.Type(), rn.FullName(), w.Type(), typeName(w))
			return
		}
		c.add(path, TypeMismatch, "type %s cannot be read as %s", typeName(w), typeName(r))
		return
	}
	switch rs := r.(type) {
	case *avro.RecordSchema:
		c.record(path, rs, w.(*avro.RecordSchema))
	case *avro.EnumSchema:
		ws := w.(*avro.EnumSchema)
		for _, sym := range ws.Symbols() {
			if !slices.Contains(rs.Symbols(), sym) && !rs.HasDefault() {
				c.add(path, SymbolMissing, "enum %s: symbol %s is not in the reader's symbols %v and the reader's enum has no default", rs.FullName(), sym, rs.Symbols())
			}
		}
	case *avro.FixedSchema:
		if ws := w.(*avro.FixedSchema); rs.Size() != ws.Size() {
			c.add(path, SizeMismatch, "fixed %s: size %d cannot be read as size %d", rs.FullName(), ws.Size(), rs.Size())
		}
	case *avro.ArraySchema:
		c.check(path+"[]", rs.Items(), w.(*avro.ArraySchema).Items())
	case *avro.MapSchema:
		c.check(path+"{}", rs.Values(), w.(*avro.MapSchema).Values())
	}
}

func (c *checker) record(path string, r, w *avro.RecordSchema) {
	key := [2]string{r.FullName(), w.FullName()}
	if c.seen[key] {
		return
	}
	c.seen[key] = true
	defer delete(c.seen, key)
	for _, rf := range r.Fields() {
		fp := join(path, rf.Name())
		wf := findField(w, rf)
		if wf == nil {
			if !rf.HasDefault() {
				c.add(fp, FieldMissing, "field %s (%s) has no default and the writer does not write it", rf.Name(), typeName(rf.Type()))
			}
			continue
		}
		c.check(fp, rf.Type(), wf.Type())
	}
}

// findField finds the writer field a reader field reads: by name, then by
// the reader field's aliases.
func findField(w *avro.RecordSchema, rf *avro.Field) *avro.Field {
	for _, wf := range w.Fields() {
		if wf.Name() == rf.Name() {
			return wf
		}
	}
	for _, wf := range w.Fields() {
		if slices.Contains(rf.Aliases(), wf.Name()) {
			return wf
		}
	}
	return nil
}

// pick returns the first branch of u that matches w exactly, then the
// first that matches after promotion.
func pick(u *avro.UnionSchema, w avro.Schema) avro.Schema {
	w = deref(w)
	for _, b := range u.Types() {
		if deref(b).Type() == w.Type() && matches(b, w) {
			return b
		}
	}
	for _, b := range u.Types() {
		if matches(b, w) {
			return b
		}
	}
	return nil
}

func unionNames(u *avro.UnionSchema) string {
	var names []string
	for _, b := range u.Types() {
		names = append(names, typeName(deref(b)))
	}
	return "[" + strings.Join(names, ", ") + "]"
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
