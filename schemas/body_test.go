package schemas

import (
	"errors"
	"strings"
	"testing"
)

// every is a record with one field of each kind a body can hold.
const every = `{"type":"record","name":"Every","namespace":"strata.t","fields":[
	{"name":"b","type":"boolean"},
	{"name":"i","type":"int"},
	{"name":"l","type":"long"},
	{"name":"f","type":"float"},
	{"name":"d","type":"double"},
	{"name":"s","type":"string"},
	{"name":"y","type":"bytes"},
	{"name":"x","type":{"type":"fixed","name":"Two","size":2}},
	{"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}},
	{"name":"u","type":["null","string"]},
	{"name":"a","type":{"type":"array","items":{"type":"record","name":"Item","fields":[{"name":"sku","type":"string"},{"name":"qty","type":"long"}]}}},
	{"name":"m","type":{"type":"map","values":"long"}}
]}`

// TestMalformedBodies: a body that does not follow its schema to the last
// byte is refused naming where and why, before hamba/avro decodes it:
// hamba would read a body cut at a field's boundary as a whole one with
// zero values, and a block count of MinInt64 as a slice of negative
// length.
func TestMalformedBodies(t *testing.T) {
	cat := gateCatalog(t, map[string]string{"t/Every.v1.avsc": every})
	ver := cat.subjects["t/Every"].Versions[0]
	good := []byte{
		0x01,       // b: true
		0x04,       // i: 2
		0x06,       // l: 3
		0, 0, 0, 0, // f
		0, 0, 0, 0, 0, 0, 0, 0, // d
		0x04, 'h', 'i', // s: "hi"
		0x02, 0xff, // y: one byte
		'a', 'b', // x
		0x02,            // e: GREEN
		0x02, 0x02, 'u', // u: the string "u"
		0x02, 0x02, 'k', 0x02, 0x00, // a: one item {sku: "k", qty: 1}, end
		0x02, 0x02, 'k', 0x08, 0x00, // m: {"k": 4}, end
	}
	var m map[string]any
	if err := cat.DecodeInput(ver, good, &m); err != nil {
		t.Fatalf("the good body: %v", err)
	}
	if m["s"] != "hi" || len(m["a"].([]any)) != 1 || m["m"].(map[string]any)["k"] != int64(4) {
		t.Fatalf("decoded %v", m)
	}
	at := func(i int, b ...byte) []byte { // good with bytes from i replaced
		return append(append([]byte(nil), good[:i]...), b...)
	}
	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"empty", nil, "the body (0 bytes) ends inside a boolean"},
		{"cut at a field's boundary", good[:3], "the body (3 bytes) ends inside a float"},
		{"cut inside a string", good[:17], "the body (17 bytes) ends inside a string"},
		{"cut before the end of the map", good[:len(good)-1], "ends inside a map block count"},
		{"a byte after the record", append(append([]byte(nil), good...), 0), "1 byte(s) after the end of the record, at byte 36 of the body"},
		{"a boolean of 2", at(0, 0x02), "at byte 0 of the body: boolean byte 0x2, want 0 or 1"},
		{"an int of 6 bytes", at(1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00), "int longer than 5 bytes"},
		{"a long of 11 bytes", at(2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00), "long longer than 10 bytes"},
		{"a negative string length", at(15, 0x01), "at byte 15 of the body: string length -1"},
		{"a string length beyond the limit", at(15, 0x80, 0x80, 0x80, 0x08), "string length 8388608, want 0 to 4194304"},
		{"a string longer than the data", at(15, 0x7e, 'h'), "ends inside a string"},
		{"an enum index out of range", at(22, 0x04), "at byte 22 of the body: enum strata.t.Color index 2, want 0 to 1"},
		{"a negative enum index", at(22, 0x01), "enum strata.t.Color index -1"},
		{"a union index out of range", at(23, 0x04), "at byte 23 of the body: union index 2, want 0 to 1"},
		{"an array count of MinInt64", at(26, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00), "array block count -9223372036854775808"},
		{"a million items in a few bytes", at(26, 0x80, 0x80, 0x80, 0x01, 0x00), "ends inside an array of 1048576 items"},
		{"more items than a body may hold", at(26, 0x82, 0x80, 0x80, 0x01), "array of 1048577 items: more than 1048576"},
		{"a block size that disagrees with its items", at(26, 0x01, 0x02, 0x02, 'k', 0x02, 0x00), "array block of 1 bytes by its header, 3 by its items"},
		{"a negative block size", at(26, 0x01, 0x01), "array block size -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := cat.DecodeInput(ver, tc.body, &m)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "t/Every.v1.avsc") {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if _, err := cat.DecodeGeneric(ver, tc.body); !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeGeneric: %v", err)
			}
		})
	}
	// A block with its size in bytes, as some writers send it, is fine.
	sized := at(26, 0x01, 0x06, 0x02, 'k', 0x02, 0x00, 0x02, 0x02, 'k', 0x08, 0x00)
	if err := cat.DecodeInput(ver, sized, &m); err != nil {
		t.Fatalf("a sized block: %v", err)
	}
	// Strings that are not UTF-8: refused in input, read in stored data.
	latin1 := at(15, 0x04, 'h', 0xe9)
	latin1 = append(latin1, good[18:]...)
	if err := cat.DecodeInput(ver, latin1, &m); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "at byte 16 of the body: a string that is not UTF-8") {
		t.Fatalf("DecodeInput of Latin-1: %v", err)
	}
	if err := cat.Decode(ver, latin1, &m); err != nil {
		t.Fatalf("Decode of Latin-1: %v", err)
	}
}

// TestRecursiveSchemaBodies: a schema that refers to itself cannot make
// the check recurse without end.
func TestRecursiveSchemaBodies(t *testing.T) {
	cat := gateCatalog(t, map[string]string{"t/Node.v1.avsc": `{"type":"record","name":"Node","namespace":"strata.t","fields":[
		{"name":"next","type":["null","Node"]}]}`})
	ver := cat.subjects["t/Node"].Versions[0]
	deep := []byte{}
	for range 1000 {
		deep = append(deep, 0x02) // union index 1: another Node
	}
	deep = append(deep, 0x00)
	var m map[string]any
	if err := cat.Decode(ver, deep, &m); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "nested deeper than 128") {
		t.Fatalf("1000 nested nodes: %v", err)
	}
	if err := cat.Decode(ver, []byte{0x02, 0x02, 0x00}, &m); err != nil {
		t.Fatalf("2 nested nodes: %v", err)
	}
}
