// Package projections is Strata's read side: projections consume events
// topics and keep views (rows addressed by key) up to date in Pebble.
//
// A projection's Apply is called once per event, in the order of each
// events partition, inside a transaction over the view's rows. The runtime
// stores how far it has read each partition in the same Pebble batch as the
// rows that reading produced, so after a crash a view is exactly as if
// every event up to its stored offsets was applied once: never skipped,
// never twice.
//
// # Usage
//
//	var View = projections.Projection{
//		Name:       "accounts",
//		Aggregates: []string{"account"},
//		Apply: func(tx projections.Tx, ev projections.Event) error {
//			var row Row
//			if _, err := tx.Get(ev.AggregateID, &row); err != nil {
//				return err
//			}
//			... // fold ev.Data into row
//			return tx.Put(ev.AggregateID, row)
//		},
//	}
//
// Every Strata instance keeps its own full copy of each view: a projection
// reads all partitions of its topics, so reads scale by adding instances.
package projections
