package aggregates

// Upcaster reads events written with an old schema version that Avro schema
// resolution cannot bring to the newest one: a change of unit, an event
// split in two, an event type renamed or retired. It is pure: generic data
// in (records as map[string]any, as the old schema decoded it), events out.
//
// The runtime applies it when it meets version From of Event: it decodes
// the stored bytes with that version's own schema, calls Up, and reads each
// result as Type at Version, resolving it into the newest version or
// passing it to the next upcaster. An event's version in its aggregate's
// stream does not change: an upcaster that splits one stored event returns
// several events for the same stream version.
type Upcaster struct {
	// Event is the event type whose old version this reads.
	Event string
	// From is the schema version it reads (schemas/<agg>/<Event>.v<From>.avsc).
	From int
	// Up converts one event; an empty result drops it.
	Up func(data map[string]any) ([]Upcast, error)
}

// Upcast is one event an upcaster returns.
type Upcast struct {
	// Type is the event type; Version the schema version Data follows
	// (usually From+1 of the same type).
	Type    string
	Version int
	Data    map[string]any
}
