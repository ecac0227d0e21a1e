// Package postgres keeps a copy of a view in PostgreSQL tables: a
// projections.Sink that writes each batch's rows and the view's offsets in
// one database transaction, so the table is exactly-once with respect to
// the events topics.
//
// For view <view> in namespace <ns> it keeps, in the configured schema:
//
//   - the table <ns>_<view>_rows: _key (primary key), _row_version,
//     _deleted, a column per field of the view's Avro schema (see SQLType),
//     and _idx_<index> / _idx_<index>_sort for each of the view's indexes;
//   - the SQL view <ns>_<view>: the rows that are not deleted, without
//     _deleted and the index columns: what other services query;
//   - the table <ns>_sink_offsets (view, topic, partition, next_offset),
//     shared by the views of the namespace.
//
// A deleted row stays as a tombstone (_deleted, its fields NULL) with the
// version of the delete: a replay of an older Put cannot bring it back,
// which a plain DELETE would let happen. Index values and sort keys come
// from the view's Go index functions, so they are stored as text columns
// computed in Go, with a B-tree index on (value, sort DESC): the orders of
// a customer, newest first, are
// `WHERE _idx_customer_id = $1 ORDER BY _idx_customer_id_sort DESC`.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/projections"
)

// Config configures a Sink.
type Config struct {
	// URL is the database's connection string (postgres://user:pass@host/db
	// ?sslmode=verify-full&sslrootcert=…): TLS and credentials go there.
	// Required. It is never logged.
	URL string
	// Schema the tables are created in. Default "public".
	Schema string
}

// Sink writes one view to PostgreSQL. Open must come before Write; a Sink
// is used by one runner at a time.
type Sink struct {
	cfg  Config
	pool *pgxpool.Pool

	// Set by Open.
	view    string // <ns>_<view>: the offsets' view column, the tables' base name
	table   string // sanitized <schema>.<ns>_<view>_rows
	offsets string // sanitized <schema>.<ns>_sink_offsets
	cols    []Column
	indexes []projections.Index
	upsert  [2]string // by backfill: strictly newer, or newer or equal
	tomb    [2]string
	offUp   string
}

// New returns a sink for the database at cfg.URL. It connects lazily:
// Open reports an unreachable server (and the runner retries it).
func New(cfg Config) (*Sink, error) {
	if cfg.URL == "" {
		return nil, errors.New("postgres sink: no URL: set url, url_file or url_env")
	}
	if cfg.Schema == "" {
		cfg.Schema = "public"
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, errors.New("postgres sink: the URL does not parse as a PostgreSQL connection string (postgres://user:password@host:port/database?sslmode=…)")
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("postgres sink: %w", err)
	}
	return &Sink{cfg: cfg, pool: pool}, nil
}

// Name implements projections.Sink.
func (s *Sink) Name() string { return "postgres" }

// Close implements projections.Sink.
func (s *Sink) Close() error {
	s.pool.Close()
	return nil
}

// Reserved column names; a view field named so is refused.
const (
	colKey     = "_key"
	colVersion = "_row_version"
	colDeleted = "_deleted"
)

func ident(parts ...string) string { return pgx.Identifier(parts).Sanitize() }

func idxCols(name string) (value, sort string) { return "_idx_" + name, "_idx_" + name + "_sort" }

// Open implements projections.Sink: it creates or migrates the tables,
// the SQL view and the indexes, and returns the view's stored offsets.
func (s *Sink) Open(ctx context.Context, v projections.SinkView) (map[position.TP]int64, error) {
	if v.Schema == nil {
		return nil, fmt.Errorf("view %s has no Avro schema (schemas/views/%s.v1.avsc): the postgres sink makes its table from it", v.Name, v.Name)
	}
	cols, err := Columns(v.Schema)
	if err != nil {
		return nil, fmt.Errorf("view %s: %w", v.Name, err)
	}
	for _, c := range cols {
		if strings.HasPrefix(c.Name, "_") {
			return nil, fmt.Errorf("view %s: field %q: names starting with _ are the postgres sink's own columns; rename the field", v.Name, c.Name)
		}
	}
	base := v.Name
	if v.Namespace != "" {
		base = v.Namespace + "_" + v.Name
	}
	s.view, s.cols, s.indexes = base, cols, v.Indexes
	s.table = ident(s.cfg.Schema, base+"_rows")
	s.offsets = ident(s.cfg.Schema, v.Namespace+"_sink_offsets")
	s.prepare()

	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer tx.Rollback(ctx)
	// Instances opening the same view at once would race on CREATE ...
	// IF NOT EXISTS (which is not atomic in PostgreSQL): one at a time.
	h := fnv.New64a()
	h.Write([]byte(s.cfg.Schema + "." + base))
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64())); err != nil {
		return nil, fmt.Errorf("lock the schema: %w", err)
	}
	for _, stmt := range s.ddl() {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return nil, fmt.Errorf("prepare table %s: %s: %w", s.table, firstLine(stmt), err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("prepare table %s: %w", s.table, err)
	}
	rows, err := s.pool.Query(ctx, "SELECT topic, partition, next_offset FROM "+s.offsets+" WHERE view = $1", s.view)
	if err != nil {
		return nil, fmt.Errorf("read offsets: %w", err)
	}
	defer rows.Close()
	var offs map[position.TP]int64
	for rows.Next() {
		var tp position.TP
		var off int64
		if err := rows.Scan(&tp.Topic, &tp.Partition, &off); err != nil {
			return nil, fmt.Errorf("read offsets: %w", err)
		}
		if offs == nil {
			offs = map[position.TP]int64{}
		}
		offs[tp] = off
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read offsets: %w", err)
	}
	return offs, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// ddl is what Open runs: create what is missing, add the columns of
// fields added by newer schema versions, and recreate the SQL view.
func (s *Sink) ddl() []string {
	var defs []string
	defs = append(defs, ident(colKey)+" text PRIMARY KEY", ident(colVersion)+" bigint NOT NULL", ident(colDeleted)+" boolean NOT NULL DEFAULT false")
	for _, c := range s.cols {
		def := ident(c.Name) + " " + c.Type
		if !c.Nullable && c.Type != "jsonb" {
			// Required fields are NOT NULL, except on tombstones. Not the
			// jsonb ones: a Go nil slice or map is JSON null, and Avro
			// writes it as empty.
			def += fmt.Sprintf(" CHECK (%s OR %s IS NOT NULL)", ident(colDeleted), ident(c.Name))
		}
		defs = append(defs, def)
	}
	for _, ix := range s.indexes {
		v, so := idxCols(ix.Name)
		defs = append(defs, ident(v)+" text", ident(so)+" text")
	}
	stmts := []string{
		fmt.Sprintf("CREATE SCHEMA IF NOT EXISTS %s", ident(s.cfg.Schema)),
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n%s)", s.table, strings.Join(defs, ",\n")),
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (view text NOT NULL, topic text NOT NULL, partition integer NOT NULL, next_offset bigint NOT NULL, PRIMARY KEY (view, topic, partition))", s.offsets),
	}
	// A newer schema version's fields: a column each, nullable (the rows
	// written before have no value for it until they are written again).
	for _, c := range s.cols {
		stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s", s.table, ident(c.Name), c.Type))
	}
	for _, ix := range s.indexes {
		v, so := idxCols(ix.Name)
		stmts = append(stmts,
			fmt.Sprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s text", s.table, ident(v)),
			fmt.Sprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s text", s.table, ident(so)),
			fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (%s, %s DESC) WHERE NOT %s", ident(s.view+"_rows_idx_"+ix.Name), s.table, ident(v), ident(so), ident(colDeleted)))
	}
	sel := []string{ident(colKey), ident(colVersion)}
	for _, c := range s.cols {
		sel = append(sel, ident(c.Name))
	}
	for _, ix := range s.indexes {
		v, so := idxCols(ix.Name)
		sel = append(sel, ident(v), ident(so))
	}
	view := ident(s.cfg.Schema, s.view)
	stmts = append(stmts,
		"DROP VIEW IF EXISTS "+view,
		fmt.Sprintf("CREATE VIEW %s AS SELECT %s FROM %s WHERE NOT %s", view, strings.Join(sel, ", "), s.table, ident(colDeleted)))
	return stmts
}

// prepare builds the write statements. An upsert keeps a row only when its
// version is higher than the stored one's (for a backfill, not lower: see
// projections.SinkBatch.Backfill); a tombstone is an upsert that clears
// the fields.
func (s *Sink) prepare() {
	names := []string{ident(colKey), ident(colVersion), ident(colDeleted)}
	vals := []string{"$1", "$2", "false"}
	var set, clearSet []string
	for i, ix := range s.indexes {
		v, so := idxCols(ix.Name)
		names = append(names, ident(v), ident(so))
		vals = append(vals, fmt.Sprintf("$%d", 4+2*i), fmt.Sprintf("$%d", 5+2*i))
		set = append(set, ident(v)+" = EXCLUDED."+ident(v), ident(so)+" = EXCLUDED."+ident(so))
		clearSet = append(clearSet, ident(v)+" = NULL", ident(so)+" = NULL")
	}
	for _, c := range s.cols {
		names = append(names, ident(c.Name))
		vals = append(vals, "r."+ident(c.Name))
		set = append(set, ident(c.Name)+" = EXCLUDED."+ident(c.Name))
		clearSet = append(clearSet, ident(c.Name)+" = NULL")
	}
	for i, op := range []string{"<", "<="} {
		guard := fmt.Sprintf(" WHERE %s.%s %s EXCLUDED.%s", s.table, ident(colVersion), op, ident(colVersion))
		s.upsert[i] = fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM jsonb_populate_record(NULL::%s, $3::jsonb) r ON CONFLICT (%s) DO UPDATE SET %s = EXCLUDED.%s, %s = false, %s",
			s.table, strings.Join(names, ", "), strings.Join(vals, ", "), s.table, ident(colKey), ident(colVersion), ident(colVersion), ident(colDeleted), strings.Join(set, ", ")) + guard
		s.tomb[i] = fmt.Sprintf("INSERT INTO %s (%s, %s, %s) VALUES ($1, $2, true) ON CONFLICT (%s) DO UPDATE SET %s = EXCLUDED.%s, %s = true, %s",
			s.table, ident(colKey), ident(colVersion), ident(colDeleted), ident(colKey), ident(colVersion), ident(colVersion), ident(colDeleted), strings.Join(clearSet, ", ")) + guard
	}
	// Several instances may write the same view: the offsets only move on.
	s.offUp = fmt.Sprintf("INSERT INTO %s (view, topic, partition, next_offset) VALUES ($1, $2, $3, $4) ON CONFLICT (view, topic, partition) DO UPDATE SET next_offset = GREATEST(%s.next_offset, EXCLUDED.next_offset)",
		s.offsets, s.offsets)
}

// Write implements projections.Sink: the rows and the offsets in one
// transaction, sent as one pipelined batch.
func (s *Sink) Write(ctx context.Context, b projections.SinkBatch) error {
	if s.table == "" {
		return errors.New("postgres sink: Write before Open")
	}
	mode := 0
	if b.Backfill {
		mode = 1
	}
	var batch pgx.Batch
	for _, r := range b.Rows {
		if r.Version > 1<<63-1 {
			return fmt.Errorf("row %q: version %d does not fit a bigint", r.Key, r.Version)
		}
		if r.Row == nil {
			batch.Queue(s.tomb[mode], r.Key, int64(r.Version))
			continue
		}
		args, err := s.rowArgs(r)
		if err != nil {
			return err
		}
		batch.Queue(s.upsert[mode], args...)
	}
	for tp, off := range b.Offsets {
		batch.Queue(s.offUp, s.view, tp.Topic, tp.Partition, off)
	}
	if batch.Len() == 0 {
		return nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
		return fmt.Errorf("write %d rows to %s: %w", len(b.Rows), s.table, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit %d rows to %s: %w", len(b.Rows), s.table, err)
	}
	return nil
}

// rowArgs are an upsert's arguments: key, version, the row's JSON (its
// values rewritten where PostgreSQL reads them otherwise), index values.
func (s *Sink) rowArgs(r projections.SinkRow) ([]any, error) {
	row := []byte(r.Row)
	var fields map[string]json.RawMessage
	for _, c := range s.cols {
		if c.norm == nil {
			continue
		}
		if fields == nil {
			if err := json.Unmarshal(r.Row, &fields); err != nil {
				return nil, fmt.Errorf("row %q: %w", r.Key, err)
			}
		}
		v, ok := fields[c.Name]
		if !ok || string(v) == "null" {
			continue
		}
		nv, err := c.norm(v)
		if err != nil {
			return nil, fmt.Errorf("row %q field %s: %w", r.Key, c.Name, err)
		}
		fields[c.Name] = nv
	}
	if fields != nil {
		var err error
		if row, err = json.Marshal(fields); err != nil {
			return nil, err
		}
	}
	args := []any{r.Key, int64(r.Version), string(row)}
	for _, ix := range s.indexes {
		es, err := ix.Of(r.Row)
		if err != nil {
			return nil, fmt.Errorf("row %q index %s: %w", r.Key, ix.Name, err)
		}
		switch len(es) {
		case 0:
			args = append(args, nil, nil)
		case 1:
			args = append(args, es[0].Value, es[0].Sort)
		default:
			return nil, fmt.Errorf("row %q: index %s gives it %d entries; the postgres sink keeps one per row (a value and a sort key column)", r.Key, ix.Name, len(es))
		}
	}
	return args, nil
}
