package projections

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-es/strata/internal/store"
)

// Index is a secondary index of a view: each row has zero or more entries,
// a value (what a query's eq= matches) and a sort key (the order of the
// rows with that value, compared as bytes: format numbers and times with a
// fixed width).
type Index struct {
	Name string
	Of   func(row json.RawMessage) ([]IndexEntry, error)
	// Field and SortField, when set, say that the index is that simple:
	// its value is the row's JSON field Field, its order that of
	// SortField. A sink that indexes rows itself (a search index) can then
	// serve the index's queries. Empty: only Pebble serves them.
	Field, SortField string
}

// On returns ix declared as the row's field with rows ordered by sort
// (see Index.Field).
func (ix Index) On(field, sort string) Index {
	ix.Field, ix.SortField = field, sort
	return ix
}

// IndexEntry is one entry of a row in an index.
type IndexEntry struct{ Value, Sort string }

// IndexOn returns an index over rows of type R: fn gives a row's value and
// sort key; an empty value leaves the row out of the index.
func IndexOn[R any](name string, fn func(R) (value, sort string)) Index {
	return Index{Name: name, Of: func(raw json.RawMessage) ([]IndexEntry, error) {
		var r R
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, err
		}
		v, s := fn(r)
		if v == "" {
			return nil, nil
		}
		return []IndexEntry{{v, s}}, nil
	}}
}

const kindIndex = 'x'

// indexPrefix is the prefix of the entries of value in an index; parts are
// escaped so that 0x00 only ever separates them.
func indexPrefix(view, index, value string) []byte {
	k := store.Key(kindIndex, view, index)
	k = append(k, 0)
	k = appendEscaped(k, value)
	return append(k, 0)
}

func indexKey(view, index string, e IndexEntry, rowKey string) []byte {
	k := indexPrefix(view, index, e.Value)
	k = appendEscaped(k, e.Sort)
	k = append(k, 0)
	return append(k, rowKey...)
}

// appendEscaped writes s with 0x00 as 0x01 0x01 and 0x01 as 0x01 0x02, so
// that escaped strings keep their order and never contain 0x00.
func appendEscaped(k []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case 0:
			k = append(k, 1, 1)
		case 1:
			k = append(k, 1, 2)
		default:
			k = append(k, s[i])
		}
	}
	return k
}

// reindex updates the index entries of one row, from old (nil: none) to
// new (nil: deleted).
func reindex(b *pebble.Batch, view string, indexes []Index, rowKey string, old, new json.RawMessage) error {
	for _, ix := range indexes {
		var olds, news []IndexEntry
		var err error
		if old != nil {
			if olds, err = ix.Of(old); err != nil {
				return fmt.Errorf("index %s of row %q: %w", ix.Name, rowKey, err)
			}
		}
		if new != nil {
			if news, err = ix.Of(new); err != nil {
				return fmt.Errorf("index %s of row %q: %w", ix.Name, rowKey, err)
			}
		}
		keep := map[IndexEntry]bool{}
		for _, e := range news {
			keep[e] = true
		}
		for _, e := range olds {
			if !keep[e] {
				if err := b.Delete(indexKey(view, ix.Name, e, rowKey), nil); err != nil {
					return err
				}
			}
		}
		for _, e := range news {
			if err := b.Set(indexKey(view, ix.Name, e, rowKey), nil, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// Row is a view row as queries return it.
type Row struct {
	Key  string          `json:"key"`
	Data json.RawMessage `json:"row"`
}

// Query selects rows of a view. With Index empty, rows in key order; else
// the rows whose Index entry has value Eq, in sort-key order.
type Query struct {
	Index string
	Eq    string
	Desc  bool
	Limit int
	// Cursor continues after the last row of a previous page ("" from the
	// start). It is opaque to clients.
	Cursor string
}

// ErrBadCursor is returned for a cursor that is not one of ours.
var ErrBadCursor = errors.New("strata: bad cursor")

// Run runs q on view in db, returning a page of rows and the cursor of the
// next page ("" when this is the last).
func (q Query) Run(db *store.DB, view string) ([]Row, string, error) {
	var prefix []byte
	if q.Index == "" {
		prefix = append(store.Key(kindRow, view), 0)
	} else {
		prefix = indexPrefix(view, q.Index, q.Eq)
	}
	lower, upper := prefix, store.PrefixEnd(prefix)
	if q.Cursor != "" {
		c, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		if err != nil || len(c) == 0 {
			return nil, "", fmt.Errorf("%w: use the next value of the previous page as is", ErrBadCursor)
		}
		after := append(append([]byte(nil), prefix...), c...)
		if q.Desc {
			upper = after
		} else {
			lower = append(after, 0)
		}
	}
	rows := []Row{}
	var last []byte
	scan := db.ScanRange
	if q.Desc {
		scan = db.ScanRangeReverse
	}
	var gerr error
	err := scan(lower, upper, func(k, v []byte) bool {
		if len(rows) == q.Limit {
			return false
		}
		suffix := k[len(prefix):]
		var rowKey string
		var data []byte
		if q.Index == "" {
			rowKey, data = string(suffix), append([]byte(nil), v...)
		} else {
			i := bytes.LastIndexByte(suffix, 0)
			rowKey = string(suffix[i+1:])
			d, ok, err := db.Get(RowKey(view, rowKey))
			if err != nil {
				gerr = err
				return false
			}
			if !ok {
				return true // an index entry whose row is gone: skip
			}
			data = d
		}
		rows = append(rows, Row{Key: rowKey, Data: data})
		last = append(last[:0], suffix...)
		return true
	})
	if err = errors.Join(err, gerr); err != nil {
		return nil, "", err
	}
	next := ""
	if len(rows) == q.Limit && last != nil {
		next = base64.RawURLEncoding.EncodeToString(last)
	}
	return rows, next, nil
}
