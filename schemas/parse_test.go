package schemas

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestParsePanicIsAnError checks the last line of defence of parseSchema: a
// panic inside hamba/avro, here on a schema the empty-union check would
// have refused first, comes back as an error naming the parser.
func TestParsePanicIsAnError(t *testing.T) {
	sch, err := parseGuarded([]byte(`{"type":"record","name":"R","fields":[{"name":"a","type":[],"default":null}]}`))
	if err == nil || sch != nil {
		t.Fatalf("parseGuarded = %v, %v; want an error", sch, err)
	}
	if !strings.Contains(err.Error(), "the Avro parser (hamba/avro) failed on this schema: runtime error") {
		t.Errorf("error = %q", err)
	}
	if _, err := parseGuarded([]byte(`{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}`)); err != nil {
		t.Errorf("a good schema: %v", err)
	}
}

func TestFindEmptyUnion(t *testing.T) {
	for _, c := range []struct{ schema, want string }{
		{`[]`, ""},
		{`{"type":"array","items":[]}`, "items"},
		{`{"type":{"type":"map","values":["null",[]]}}`, "type.values[1]"},
		{`{"type":"record","name":"R","fields":[{"name":"a","type":"long","default":[]},{"name":"b","type":{"type":"array","items":["null",{"type":"record","name":"S","fields":[{"name":"c","type":[]}]}]}}]}`, "fields[1].type.items[1].fields[0].type"},
		{`{"type":"record","name":"R","fields":[],"aliases":[]}`, ""},
		{`{"type":"enum","name":"E","symbols":[]}`, ""},
	} {
		var doc any
		if err := json.Unmarshal([]byte(c.schema), &doc); err != nil {
			t.Fatal(err)
		}
		if got := findEmptyUnion(doc, ""); got != c.want {
			t.Errorf("findEmptyUnion(%s) = %q, want %q", c.schema, got, c.want)
		}
	}
}
