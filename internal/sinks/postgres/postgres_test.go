package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/jackc/pgx/v5"
	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/projections"
	"github.com/strata-es/strata/projections/orders"
	"github.com/strata-es/strata/schemas"
)

func TestSQLType(t *testing.T) {
	for _, c := range []struct {
		avro, want string
		nullable   bool
	}{
		{`"string"`, "text", false},
		{`"int"`, "integer", false},
		{`"long"`, "bigint", false},
		{`"float"`, "real", false},
		{`"double"`, "double precision", false},
		{`"boolean"`, "boolean", false},
		{`"bytes"`, "bytea", false},
		{`{"type":"long","logicalType":"timestamp-millis"}`, "timestamptz", false},
		{`{"type":"long","logicalType":"timestamp-micros"}`, "timestamptz", false},
		{`{"type":"long","logicalType":"local-timestamp-millis"}`, "timestamp", false},
		{`{"type":"int","logicalType":"date"}`, "date", false},
		{`{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}`, "numeric(10, 2)", false},
		{`{"type":"enum","name":"S","symbols":["A","B"]}`, "text", false},
		{`["null","string"]`, "text", true},
		{`["null",{"type":"long","logicalType":"timestamp-millis"}]`, "timestamptz", true},
		{`["string","long"]`, "jsonb", true},
		{`{"type":"array","items":"string"}`, "jsonb", false},
		{`{"type":"map","values":"long"}`, "jsonb", false},
		{`{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`, "jsonb", false},
	} {
		s, err := avro.Parse(c.avro)
		if err != nil {
			t.Fatalf("%s: %v", c.avro, err)
		}
		typ, nullable, _ := SQLType(s)
		if typ != c.want || nullable != c.nullable {
			t.Errorf("%s → %s (nullable %v), want %s (nullable %v)", c.avro, typ, nullable, c.want, c.nullable)
		}
	}
}

func TestNormalize(t *testing.T) {
	for _, c := range []struct {
		avro, in, want string
	}{
		{`"bytes"`, `"AAH/"`, `"\\x0001ff"`},
		{`{"type":"long","logicalType":"timestamp-millis"}`, `1700000000123`, `"2023-11-14T22:13:20.123Z"`},
		{`{"type":"long","logicalType":"timestamp-millis"}`, `"2023-11-14T22:13:20.123Z"`, `"2023-11-14T22:13:20.123Z"`},
		{`{"type":"int","logicalType":"date"}`, `19675`, `"2023-11-14"`},
	} {
		s, _ := avro.Parse(c.avro)
		_, _, norm := SQLType(s)
		got, err := norm(json.RawMessage(c.in))
		if err != nil || string(got) != c.want {
			t.Errorf("%s %s → %s (%v), want %s", c.avro, c.in, got, err, c.want)
		}
	}
	s, _ := avro.Parse(`"bytes"`)
	_, _, norm := SQLType(s)
	if _, err := norm(json.RawMessage(`12`)); err == nil {
		t.Error("bytes given as a number: no error")
	}
	if _, err := Columns(s); err == nil {
		t.Error("a view schema that is not a record: no error")
	}
}

// testURL is the PostgreSQL server of the tests, with a schema of the
// test's own (dropped at the end).
func testURL(t *testing.T) (url, schema string) {
	t.Helper()
	url = os.Getenv("STRATA_TEST_POSTGRES")
	if url == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("STRATA_TEST_POSTGRES is not set in CI: compose/sinks-up.sh starts PostgreSQL and prints it")
		}
		t.Skip("STRATA_TEST_POSTGRES is not set: start PostgreSQL with compose/sinks-up.sh (it prints the variable)")
	}
	var b [6]byte
	rand.Read(b[:])
	schema = "t_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, url); err == nil {
			c.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			c.Close(ctx)
		}
	})
	return url, schema
}

func ordersView(t *testing.T) projections.SinkView {
	subj, ok := schemas.Default().Subject("views/orders")
	if !ok {
		t.Fatal("no views/orders schema")
	}
	return projections.SinkView{Name: "orders", Namespace: "strata", Schema: subj.Latest().Schema, Indexes: orders.Projection.Indexes}
}

func orderRow(t *testing.T, id, customer string, created time.Time, status string) json.RawMessage {
	v, err := json.Marshal(orders.Row{ID: id, CustomerID: customer, Status: status, CreatedAt: created, UpdatedAt: created, Total: 1250})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestOrdersTable: the orders view as a table on a real PostgreSQL: typed
// columns, rows kept only when newer, tombstones that hold, offsets that
// only move on, the customer index in order, and a schema's added field
// added as a column.
func TestOrdersTable(t *testing.T) {
	url, schema := testURL(t)
	ctx := context.Background()
	s, err := New(Config{URL: url, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	offs, err := s.Open(ctx, ordersView(t))
	if err != nil {
		t.Fatal(err)
	}
	if offs != nil {
		t.Errorf("a new table's offsets: %v, want none", offs)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	types := map[string]string{}
	rows, _ := conn.Query(ctx, "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'strata_orders_rows'", schema)
	for rows.Next() {
		var n, ty string
		rows.Scan(&n, &ty)
		types[n] = ty
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	for col, want := range map[string]string{"_key": "text", "_row_version": "bigint", "id": "text", "customer_id": "text", "items": "jsonb",
		"total": "bigint", "created_at": "timestamp with time zone", "_idx_customer_id": "text"} {
		if types[col] != want {
			t.Errorf("column %s: %q, want %s (all: %v)", col, types[col], want, types)
		}
	}

	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tp := position.TP{Topic: "strata.order.events", Partition: 3}
	write := func(b projections.SinkBatch) {
		t.Helper()
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	write(projections.SinkBatch{Offsets: map[position.TP]int64{tp: 10}, Rows: []projections.SinkRow{
		{Key: "o1", Version: 2, Row: orderRow(t, "o1", "c1", t0, "confirmed")},
		{Key: "o2", Version: 1, Row: orderRow(t, "o2", "c1", t0.Add(time.Hour), "pending")},
		{Key: "o3", Version: 1, Row: orderRow(t, "o3", "c2", t0, "pending")},
	}})
	// A replay: older and equal versions change nothing, a delete holds
	// against an older put, the offsets do not go back.
	write(projections.SinkBatch{Offsets: map[position.TP]int64{tp: 4}, Rows: []projections.SinkRow{
		{Key: "o1", Version: 1, Row: orderRow(t, "o1", "c1", t0, "pending")},
		{Key: "o2", Version: 1, Row: orderRow(t, "o2", "c9", t0, "pending")},
		{Key: "o3", Version: 2},
	}})
	write(projections.SinkBatch{Rows: []projections.SinkRow{{Key: "o3", Version: 1, Row: orderRow(t, "o3", "c2", t0, "pending")}}})

	status := func(key string) string {
		var st string
		err := conn.QueryRow(ctx, fmt.Sprintf("SELECT status FROM %s.strata_orders WHERE _key = $1", schema), key).Scan(&st)
		if err == pgx.ErrNoRows {
			return "(none)"
		}
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if got := status("o1"); got != "confirmed" {
		t.Errorf("o1 after an older version: %s, want confirmed", got)
	}
	if got := status("o3"); got != "(none)" {
		t.Errorf("o3 after a delete and an older put: %s, want none", got)
	}
	var created time.Time
	var total int64
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT created_at, total FROM %s.strata_orders WHERE _key = 'o1'", schema)).Scan(&created, &total); err != nil || !created.Equal(t0) || total != 1250 {
		t.Errorf("o1: created_at %v total %d (%v), want %v 1250", created, total, err, t0)
	}
	// The customer's orders, newest first, through the index columns.
	var keys []string
	rows, err = conn.Query(ctx, fmt.Sprintf("SELECT _key FROM %s.strata_orders WHERE _idx_customer_id = $1 ORDER BY _idx_customer_id_sort DESC", schema), "c1")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		rows.Scan(&k)
		keys = append(keys, k)
	}
	if strings.Join(keys, ",") != "o2,o1" {
		t.Errorf("orders of c1, newest first: %v, want o2,o1", keys)
	}
	var nidx int
	conn.QueryRow(ctx, "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = 'strata_orders_rows_idx_customer_id'", schema).Scan(&nidx)
	if nidx != 1 {
		t.Error("no database index for the view's customer_id index")
	}

	// A backfill replaces equal versions (a rebuilt generation), not higher.
	write(projections.SinkBatch{Backfill: true, Rows: []projections.SinkRow{
		{Key: "o1", Version: 2, Row: orderRow(t, "o1", "c1", t0, "shipped")},
		{Key: "o2", Version: 0, Row: orderRow(t, "o2", "c1", t0, "cancelled")},
	}})
	if got := status("o1"); got != "shipped" {
		t.Errorf("o1 after a backfill of its version: %s, want shipped", got)
	}
	if got := status("o2"); got != "pending" {
		t.Errorf("o2 after a backfill of an older version: %s, want pending", got)
	}

	// Open again, with a schema that has one more field: the stored
	// offsets come back and the column is added.
	v := ordersView(t)
	v2 := strings.Replace(v.Schema.String(), `{"name":"version","type":"long"}`, `{"name":"version","type":"long"},{"name":"note","type":["null","string"],"default":null}`, 1)
	if v.Schema, err = avro.Parse(v2); err != nil {
		t.Fatal(err)
	}
	offs, err = s.Open(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	if offs[tp] != 10 || len(offs) != 1 {
		t.Errorf("stored offsets: %v, want %v: 10", offs, tp)
	}
	var note *string
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT note FROM %s.strata_orders WHERE _key = 'o1'", schema)).Scan(&note); err != nil || note != nil {
		t.Errorf("the added column: %v %v, want NULL", note, err)
	}
}

// TestOpenRefuses: no schema, or a field named like the sink's own
// columns, is a clear error; a bad URL does not echo the password.
func TestOpenRefuses(t *testing.T) {
	if _, err := New(Config{URL: "postgres://u:s3cret@host:notaport/db"}); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad URL: %v", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Error("no URL: no error")
	}
	s, err := New(Config{URL: "postgres://u@127.0.0.1:1/db"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Open(context.Background(), projections.SinkView{Name: "v"}); err == nil || !strings.Contains(err.Error(), "schemas/views/v.v1.avsc") {
		t.Errorf("no schema: %v", err)
	}
	sch, _ := avro.Parse(`{"type":"record","name":"v","fields":[{"name":"_key","type":"string"}]}`)
	if _, err := s.Open(context.Background(), projections.SinkView{Name: "v", Schema: sch}); err == nil || !strings.Contains(err.Error(), "_key") {
		t.Errorf("a field named _key: %v", err)
	}
	if err := s.Write(context.Background(), projections.SinkBatch{}); err == nil {
		t.Error("Write before Open: no error")
	}
}
