package projections

import (
	"reflect"
	"time"
	"unicode/utf8"
)

// rowCache keeps the rows a batch of events wrote, decoded, so the next
// event of the same aggregate in the batch reads its row without a Pebble
// read and a JSON decode (together a third of a catch-up's CPU). Only row
// types whose copies share nothing are cached: structs of numbers,
// strings, booleans and times (a "flat" type), so an Apply that changes
// the row it got cannot change the cache. Rows are cached only when their
// JSON round-trip is exact (valid UTF-8 strings), so a rebuild gives the
// same rows wherever its batches happen to start.
type rowCache struct {
	typ  reflect.Type // the flat row type; nil disables the cache
	rows map[string]cachedRow
}

type cachedRow struct {
	val     reflect.Value // of typ; invalid when deleted
	deleted bool
}

var timeType = reflect.TypeFor[time.Time]()

// flatType reports whether t's values can be copied by assignment without
// sharing anything mutable.
func flatType(t reflect.Type) bool {
	if t == timeType {
		return true
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.String:
		return true
	case reflect.Array:
		return flatType(t.Elem())
	case reflect.Struct:
		// Every field must survive a JSON round-trip: exported, not
		// skipped by its tag.
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || f.Tag.Get("json") == "-" || !flatType(f.Type) {
				return false
			}
		}
		return true
	}
	return false
}

// newRowCache returns the cache for rows like row (a projection's Row),
// disabled when they are not flat.
func newRowCache(row any) *rowCache {
	t := reflect.TypeOf(row)
	if t == nil || t.Kind() != reflect.Struct || !flatType(t) {
		return &rowCache{}
	}
	return &rowCache{typ: t, rows: map[string]cachedRow{}}
}

// value returns row, a T or *T, as a cacheable value of the cache's type.
func (c *rowCache) value(row any) (reflect.Value, bool) {
	if c.typ == nil {
		return reflect.Value{}, false
	}
	v := reflect.ValueOf(row)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Type() != c.typ || !validStrings(v) {
		return reflect.Value{}, false
	}
	cp := reflect.New(c.typ).Elem()
	cp.Set(v)
	return cp, true
}

// get copies the cached row of key into dst (a *T); found says whether the
// cache knows the key, ok whether a row exists.
func (c *rowCache) get(key string, dst any) (found, ok bool) {
	if c.typ == nil {
		return false, false
	}
	r, in := c.rows[key]
	if !in || !c.fits(dst) {
		return false, false
	}
	if r.deleted {
		return true, false
	}
	reflect.ValueOf(dst).Elem().Set(r.val)
	return true, true
}

// set copies the row r into dst when dst is a *T; false when it is not.
func (c *rowCache) set(r cachedRow, dst any) bool {
	if c.typ == nil || r.deleted || !c.fits(dst) {
		return false
	}
	reflect.ValueOf(dst).Elem().Set(r.val)
	return true
}

func (c *rowCache) fits(dst any) bool {
	d := reflect.ValueOf(dst)
	return d.Kind() == reflect.Pointer && !d.IsNil() && d.Elem().Type() == c.typ
}

func validStrings(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String:
		return utf8.ValidString(v.String())
	case reflect.Array:
		for i := range v.Len() {
			if !validStrings(v.Index(i)) {
				return false
			}
		}
	case reflect.Struct:
		if v.Type() == timeType {
			return true
		}
		for i := range v.NumField() {
			if !validStrings(v.Field(i)) {
				return false
			}
		}
	}
	return true
}
