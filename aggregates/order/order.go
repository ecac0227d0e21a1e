package order

import "github.com/strata-es/strata/aggregates"

// Name is the aggregate type's name: topics strata.order.*, URLs
// /v1/commands/order/{id}, schemas under schemas/order/.
const Name = "order"

// Decider is the order aggregate.
var Decider = aggregates.Decider[State]{
	Name:     Name,
	Commands: []aggregates.Command{Create{}, AddItem{}, RemoveItem{}, Confirm{}, Cancel{}, Ship{}},
	Events:   []aggregates.Event{Created{}, ItemAdded{}, ItemRemoved{}, Confirmed{}, Cancelled{}, Shipped{}},
	Decide:   decide,
	Evolve:   evolve,
}

// Type is Decider registered for the runtime.
var Type = aggregates.MustRegister(Decider)
