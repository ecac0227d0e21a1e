package search

import (
	"fmt"

	"github.com/hamba/avro/v2"
)

// keyField holds each document's row key. Sorting on _id is refused by
// Elasticsearch 8, so the tiebreaker of a sorted query needs a field of
// its own. It is written first in the document and cut off when reading,
// so that a document reads back as exactly the row's JSON (a _source
// exclude would do it too, but the store then rewrites the rest, and
// OpenSearch does not keep the fields' order).
const keyField = "strata_key"

// dateFormat reads both forms a view row's JSON may give a time in: the
// RFC 3339 of a Go time.Time (orders' created_at) and epoch milliseconds.
const dateFormat = "strict_date_optional_time||epoch_millis"

// mapping returns the mappings of a view's index, from the Avro schema of
// its rows:
//
//	string, enum, uuid      keyword (exact match, sortable: what a term query needs)
//	int / long              integer / long
//	float / double          float / double
//	boolean                 boolean
//	bytes, fixed            binary (not searchable)
//	timestamp-millis/-micros date (RFC 3339 or epoch milliseconds)
//	date (int)              date (yyyy-MM-dd or epoch days as written)
//	record                  object with its fields mapped the same way
//	array of T              T (every field holds arrays in these stores)
//	map                     object, not indexed (kept in _source)
//	union [null, T]         T; other unions are not indexed (kept in _source)
//
// dynamic is false: a field the schema does not declare is kept in
// _source, so reads return the whole row, but not indexed. "strict"
// would refuse such a row, and a refused row stops the projection until
// someone changes the schema; not indexing it costs only searchability.
func mapping(schema avro.Schema) (map[string]any, error) {
	rec, ok := unref(schema).(*avro.RecordSchema)
	if !ok {
		return nil, fmt.Errorf("the view's schema is a %s, want a record", schema.Type())
	}
	props := map[string]any{keyField: map[string]any{"type": "keyword"}}
	for _, f := range rec.Fields() {
		if f.Name() == keyField {
			return nil, fmt.Errorf("field %s: the name is reserved for the row key", keyField)
		}
		props[f.Name()] = fieldMapping(f.Type())
	}
	return map[string]any{
		"dynamic":    false,
		"properties": props,
	}, nil
}

func unref(s avro.Schema) avro.Schema {
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema()
	}
	return s
}

func fieldMapping(s avro.Schema) map[string]any {
	s = unref(s)
	switch t := s.(type) {
	case *avro.PrimitiveSchema:
		if l := t.Logical(); l != nil {
			switch l.Type() {
			case avro.TimestampMillis, avro.TimestampMicros, avro.LocalTimestampMillis, avro.LocalTimestampMicros:
				return map[string]any{"type": "date", "format": dateFormat}
			case avro.Date:
				return map[string]any{"type": "date", "format": "strict_date||epoch_second"}
			case avro.UUID:
				return map[string]any{"type": "keyword"}
			}
		}
		switch t.Type() {
		case avro.String:
			return map[string]any{"type": "keyword"}
		case avro.Int:
			return map[string]any{"type": "integer"}
		case avro.Long:
			return map[string]any{"type": "long"}
		case avro.Float:
			return map[string]any{"type": "float"}
		case avro.Double:
			return map[string]any{"type": "double"}
		case avro.Boolean:
			return map[string]any{"type": "boolean"}
		case avro.Bytes:
			return map[string]any{"type": "binary"}
		}
	case *avro.EnumSchema:
		return map[string]any{"type": "keyword"}
	case *avro.FixedSchema:
		return map[string]any{"type": "binary"}
	case *avro.ArraySchema:
		return fieldMapping(t.Items())
	case *avro.RecordSchema:
		props := map[string]any{}
		for _, f := range t.Fields() {
			props[f.Name()] = fieldMapping(f.Type())
		}
		return map[string]any{"type": "object", "properties": props}
	case *avro.UnionSchema:
		var rest []avro.Schema
		for _, u := range t.Types() {
			if u.Type() != avro.Null {
				rest = append(rest, u)
			}
		}
		if len(rest) == 1 {
			return fieldMapping(rest[0])
		}
	}
	// A map, a null, a union of several types: kept, not indexed.
	return map[string]any{"type": "object", "enabled": false}
}

// sortable says whether a field's mapping can sort a query (doc values).
func sortable(m map[string]any) bool {
	switch m["type"] {
	case "keyword", "integer", "long", "float", "double", "boolean", "date":
		return true
	}
	return false
}
