package postgres

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/hamba/avro/v2"
)

// Column is one column a view's Avro field becomes.
type Column struct {
	Name string // the field's name, quoted when used
	// Type is the PostgreSQL type (see SQLType); Nullable whether the
	// field may be null (a union with "null").
	Type     string
	Nullable bool
	// norm rewrites the field's JSON value, as the row's JSON has it, into
	// what jsonb_populate_record reads as Type; nil when it reads it as is.
	norm func(json.RawMessage) (json.RawMessage, error)
}

// Columns maps the fields of a view's record schema to columns.
func Columns(s avro.Schema) ([]Column, error) {
	rec, ok := deref(s).(*avro.RecordSchema)
	if !ok {
		return nil, fmt.Errorf("the view's schema is a %s, not a record: a table needs named fields", s.Type())
	}
	cols := make([]Column, 0, len(rec.Fields()))
	for _, f := range rec.Fields() {
		typ, nullable, norm := SQLType(f.Type())
		cols = append(cols, Column{Name: f.Name(), Type: typ, Nullable: nullable, norm: norm})
	}
	return cols, nil
}

func deref(s avro.Schema) avro.Schema {
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema()
	}
	return s
}

// SQLType is the PostgreSQL type of an Avro type:
//
//	string, enum, uuid      text
//	int                     integer     (date: date; time-millis: integer)
//	long                    bigint      (timestamp-millis/micros: timestamptz;
//	                                     local-timestamp-*: timestamp)
//	float / double          real / double precision
//	boolean                 boolean
//	bytes, fixed            bytea       (decimal: numeric(precision, scale))
//	["null", T]             T, NULL allowed
//	other unions, arrays,
//	maps, records           jsonb
//
// The rows' JSON is what the view's Go type marshals to: a time.Time is an
// RFC 3339 string, []byte is base64; a timestamp or date given as a number
// (milliseconds, microseconds, days since 1970) is read as such.
func SQLType(s avro.Schema) (typ string, nullable bool, norm func(json.RawMessage) (json.RawMessage, error)) {
	s = deref(s)
	switch s.Type() {
	case avro.Union:
		u := s.(*avro.UnionSchema)
		if u.Nullable() {
			for _, t := range u.Types() {
				if t.Type() != avro.Null {
					typ, _, norm := SQLType(t)
					return typ, true, norm
				}
			}
		}
		return "jsonb", true, nil
	case avro.String, avro.Enum:
		return "text", false, nil
	case avro.Boolean:
		return "boolean", false, nil
	case avro.Float:
		return "real", false, nil
	case avro.Double:
		return "double precision", false, nil
	case avro.Int:
		switch logical(s) {
		case avro.Date:
			return "date", false, dateNorm
		}
		return "integer", false, nil
	case avro.Long:
		switch logical(s) {
		case avro.TimestampMillis:
			return "timestamptz", false, epochNorm(time.Millisecond, true)
		case avro.TimestampMicros:
			return "timestamptz", false, epochNorm(time.Microsecond, true)
		case avro.LocalTimestampMillis:
			return "timestamp", false, epochNorm(time.Millisecond, false)
		case avro.LocalTimestampMicros:
			return "timestamp", false, epochNorm(time.Microsecond, false)
		}
		return "bigint", false, nil
	case avro.Bytes, avro.Fixed:
		if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil && ls.Logical().Type() == avro.Decimal {
			if d, ok := ls.Logical().(*avro.DecimalLogicalSchema); ok {
				return fmt.Sprintf("numeric(%d, %d)", d.Precision(), d.Scale()), false, nil
			}
			return "numeric", false, nil
		}
		return "bytea", false, byteaNorm
	}
	return "jsonb", false, nil // array, map, record
}

func logical(s avro.Schema) avro.LogicalType {
	if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil {
		return ls.Logical().Type()
	}
	return ""
}

// byteaNorm turns base64 (how encoding/json writes []byte) into bytea's
// hex input format.
func byteaNorm(v json.RawMessage) (json.RawMessage, error) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("bytes: want a base64 string, got %s", v)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("bytes: %w", err)
	}
	return json.Marshal(`\x` + hex.EncodeToString(b))
}

// epochNorm reads a number as a time since 1970 in units; a string (RFC
// 3339) passes.
func epochNorm(unit time.Duration, utc bool) func(json.RawMessage) (json.RawMessage, error) {
	return func(v json.RawMessage) (json.RawMessage, error) {
		n, ok, err := number(v)
		if !ok || err != nil {
			return v, err
		}
		t := time.Unix(0, 0).Add(time.Duration(n) * unit).UTC()
		if utc {
			return json.Marshal(t.Format(time.RFC3339Nano))
		}
		return json.Marshal(t.Format("2006-01-02T15:04:05.999999999"))
	}
}

// dateNorm reads a number as days since 1970; a string passes.
func dateNorm(v json.RawMessage) (json.RawMessage, error) {
	n, ok, err := number(v)
	if !ok || err != nil {
		return v, err
	}
	return json.Marshal(time.Unix(0, 0).UTC().AddDate(0, 0, int(n)).Format(time.DateOnly))
}

// number reads v as an integer when it is a JSON number.
func number(v json.RawMessage) (int64, bool, error) {
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("want an integer, got %s", v)
	}
	return n, true, nil
}
