package store

import (
	"bytes"
	"fmt"
)

// AggregateIDs calls fn for each stored aggregate of a type whose ID starts
// with prefix and sorts after after ("" from the first), in ID order (by
// bytes), until fn returns false. It is a bounded prefix scan: it reads
// only the keys it hands to fn (and one more), so a search costs the same
// whether the type has a hundred aggregates or millions. The Aggregate
// passed to fn is valid only during the call.
func (d *DB) AggregateIDs(aggType, prefix, after string, fn func(id string, a *Aggregate) bool) error {
	base := append(Key(kindAggregate, aggType), 0)
	lower := append(bytes.Clone(base), prefix...)
	upper := PrefixEnd(lower)
	if after != "" {
		// The smallest key after that ID: IDs never hold 0x00, so
		// appending it gives the next possible key.
		next := append(append(bytes.Clone(base), after...), 0)
		if bytes.Compare(next, lower) > 0 {
			lower = next
		}
	}
	var derr error
	err := d.ScanRange(lower, upper, func(k, v []byte) bool {
		var a Aggregate
		if err := a.decode(v); err != nil {
			derr = fmt.Errorf("%w at key %q: %v", ErrCorrupt, k, err)
			return false
		}
		return fn(string(k[len(base):]), &a)
	})
	if derr != nil {
		return derr
	}
	return err
}
