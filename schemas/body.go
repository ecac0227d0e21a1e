package schemas

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/hamba/avro/v2"
)

// checkBody walks an Avro binary body along the schema that wrote it,
// before hamba/avro decodes it, and refuses what that decoder would let
// through or choke on:
//   - a body cut short: hamba's Unmarshal treats running out of data as
//     success and leaves the fields after the cut at their zero values;
//   - bytes after the end of the record;
//   - an array or map block count of math.MinInt64, which hamba negates
//     into itself and turns into a slice of negative length;
//   - block counts the remaining bytes cannot hold, which hamba would
//     allocate before reading a single item (a few bytes asking for a
//     million 40-byte items);
//   - bad booleans, enum and union indexes, lengths, overlong varints;
//   - when text is set, strings that are not UTF-8.
//
// It allocates nothing unless it fails.
func checkBody(s avro.Schema, body []byte, text bool) error {
	w := walker{b: body, text: text}
	if err := w.value(s, 0); err != nil {
		return err
	}
	if w.pos != len(body) {
		return fmt.Errorf("%w: %d byte(s) after the end of the record, at byte %d of the body", ErrMalformed, len(body)-w.pos, w.pos)
	}
	return nil
}

// ErrMalformed is wrapped by decoding errors of bodies that do not follow
// their schema.
var ErrMalformed = errors.New("strata: malformed Avro body")

// maxDepth bounds the nesting of a body's values: a recursive schema must
// not let a body recurse without end. Strata's schemas nest a few levels.
const maxDepth = 128

type walker struct {
	b     []byte
	pos   int
	text  bool
	items int // array and map items so far
}

func (w *walker) fail(format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d of the body: %s", ErrMalformed, w.pos, fmt.Sprintf(format, args...))
}

func (w *walker) truncated(what string) error {
	article := "a"
	if strings.ContainsRune("aeiou", rune(what[0])) {
		article = "an"
	}
	return fmt.Errorf("%w: the body (%d bytes) ends inside %s %s: cut short?", ErrMalformed, len(w.b), article, what)
}

// varint reads a zig-zag varint of at most maxBytes bytes, as hamba does:
// 5 for an int, 10 for a long.
func (w *walker) varint(what string, maxBytes int) (int64, error) {
	var v uint64
	var shift uint
	for i := 0; i < maxBytes; i++ {
		if w.pos >= len(w.b) {
			return 0, w.truncated(what)
		}
		c := w.b[w.pos]
		w.pos++
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			if maxBytes == 5 {
				u := uint32(v)
				return int64(int32((u >> 1) ^ -(u & 1))), nil
			}
			return int64((v >> 1) ^ -(v & 1)), nil
		}
		shift += 7
	}
	return 0, w.fail("%s longer than %d bytes", what, maxBytes)
}

func (w *walker) skip(n int, what string) error {
	if n > len(w.b)-w.pos {
		return w.truncated(what)
	}
	w.pos += n
	return nil
}

func (w *walker) value(s avro.Schema, depth int) error {
	if depth > maxDepth {
		return w.fail("values nested deeper than %d", maxDepth)
	}
	switch s := s.(type) {
	case *avro.NullSchema:
		return nil
	case *avro.PrimitiveSchema:
		switch s.Type() {
		case avro.Null:
			return nil
		case avro.Boolean:
			if w.pos >= len(w.b) {
				return w.truncated("boolean")
			}
			if c := w.b[w.pos]; c > 1 {
				return w.fail("boolean byte %#x, want 0 or 1", c)
			}
			w.pos++
			return nil
		case avro.Int:
			_, err := w.varint("int", 5)
			return err
		case avro.Long:
			_, err := w.varint("long", 10)
			return err
		case avro.Float:
			return w.skip(4, "float")
		case avro.Double:
			return w.skip(8, "double")
		case avro.String:
			return w.str(true)
		case avro.Bytes:
			return w.str(false)
		}
	case *avro.RecordSchema:
		for _, f := range s.Fields() {
			if err := w.value(f.Type(), depth+1); err != nil {
				return err
			}
		}
		return nil
	case *avro.RefSchema:
		return w.value(s.Schema(), depth+1)
	case *avro.EnumSchema:
		at := w.pos
		i, err := w.varint("enum index", 5)
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(s.Symbols())) {
			w.pos = at
			return w.fail("enum %s index %d, want 0 to %d", s.FullName(), i, len(s.Symbols())-1)
		}
		return nil
	case *avro.FixedSchema:
		return w.skip(s.Size(), "fixed")
	case *avro.UnionSchema:
		at := w.pos
		i, err := w.varint("union index", 10)
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(s.Types())) {
			w.pos = at
			return w.fail("union index %d, want 0 to %d", i, len(s.Types())-1)
		}
		return w.value(s.Types()[i], depth+1)
	case *avro.ArraySchema:
		return w.blocks(s.Items(), false, depth)
	case *avro.MapSchema:
		return w.blocks(s.Values(), true, depth)
	}
	return w.fail("schema type %s is not supported", s.Type())
}

func (w *walker) str(isString bool) error {
	what, length := "bytes", "bytes length"
	if isString {
		what, length = "string", "string length"
	}
	at := w.pos
	n, err := w.varint(length, 10)
	if err != nil {
		return err
	}
	if n < 0 || n > maxByteSlice {
		w.pos = at
		return w.fail("%s %d, want 0 to %d", length, n, maxByteSlice)
	}
	if err := w.skip(int(n), what); err != nil {
		return err
	}
	if w.text && isString && !utf8.Valid(w.b[w.pos-int(n):w.pos]) {
		w.pos -= int(n)
		return w.fail("a string that is not UTF-8")
	}
	return nil
}

// blocks walks the blocks of an array or a map: each a count, then (when
// the count is negative) the block's size in bytes, then the items; a
// count of 0 ends them.
func (w *walker) blocks(items avro.Schema, isMap bool, depth int) error {
	what, count, bsize := "array", "array block count", "array block size"
	least := minSize(items, 0)
	if isMap {
		what, count, bsize = "map", "map block count", "map block size"
		least++ // the key's length
	}
	for {
		at := w.pos
		n, err := w.varint(count, 10)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		size := int64(-1)
		if n < 0 {
			if n == math.MinInt64 {
				w.pos = at
				return w.fail("%s block count %d", what, n)
			}
			n = -n
			if size, err = w.varint(bsize, 10); err != nil {
				return err
			}
			if size < 0 {
				return w.fail("%s block size %d", what, size)
			}
		}
		if n > int64(maxSliceAlloc-w.items) {
			w.pos = at
			return w.fail("%s of %d items: more than %d in a body", what, n, maxSliceAlloc)
		}
		if least > 0 && n > int64((len(w.b)-w.pos)/least) {
			return w.truncated(fmt.Sprintf("%s of %d items", what, n))
		}
		w.items += int(n)
		start := w.pos
		for range n {
			if isMap {
				if err := w.str(true); err != nil {
					return err
				}
			}
			if err := w.value(items, depth+1); err != nil {
				return err
			}
		}
		if size >= 0 && int64(w.pos-start) != size {
			return w.fail("%s block of %d bytes by its header, %d by its items", what, size, w.pos-start)
		}
	}
}

// minSize is the fewest bytes a value of s takes; 0 for a reference to a
// named type, which may be recursive.
func minSize(s avro.Schema, depth int) int {
	if depth > maxDepth {
		return 0
	}
	switch s := s.(type) {
	case *avro.PrimitiveSchema:
		switch s.Type() {
		case avro.Null:
			return 0
		case avro.Float:
			return 4
		case avro.Double:
			return 8
		}
		return 1
	case *avro.RecordSchema:
		n := 0
		for _, f := range s.Fields() {
			n += minSize(f.Type(), depth+1)
		}
		return n
	case *avro.FixedSchema:
		return s.Size()
	case *avro.NullSchema, *avro.RefSchema:
		return 0
	}
	return 1 // enum, union, array, map: at least one varint byte
}
