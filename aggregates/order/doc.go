// Package order is the seed's order write model: a customer's order of
// items that is created pending, may change while pending, and is then
// confirmed, cancelled or shipped.
//
// The order's ID is the aggregate ID (the stream key, the {id} of
// /v1/commands/order/{id}); no command or event repeats it. Prices are
// integer minor units (cents) of one currency, timestamps are Unix
// milliseconds taken from the decision time the runtime passes to Decide.
//
// # Life cycle
//
//	              AddItem, RemoveItem
//	                  ┌──┐
//	                  ▼  │
//	CreateOrder ──▶ pending ──ConfirmOrder──▶ confirmed ──ShipOrder──▶ shipped
//	                    │                         │
//	                    │ CancelOrder             │ CancelOrder
//	                    └───────▶ cancelled ◀─────┘
//
// Items change only while the order is pending. Cancelling is possible
// until the order ships; shipped and cancelled are final.
//
// # Rules
//
// Validate checks what needs no state and answers aggregates.Invalid: a
// customer_id that aggregates.CheckID accepts; one to MaxItems items with
// distinct SKUs of 1 to MaxSKULength bytes, a qty of 1 to MaxQty and a
// unit_price of zero or more; line totals and the order total that fit in
// an int64; a cancellation reason and a carrier.
//
// Decide checks the rest against the state and answers aggregates.Reject
// with the order's status:
//   - every command but CreateOrder needs an order that exists, and
//     CreateOrder needs one that does not;
//   - AddItem of a SKU already on the order adds to its qty (the unit
//     price must match: a line has one price), up to MaxQty; a new SKU
//     adds a line, up to MaxItems lines; the total must not overflow;
//   - RemoveItem removes a whole line, which must be on the order and must
//     not be the last one: an order always has an item, so an unwanted
//     order is cancelled, not emptied;
//   - ConfirmOrder needs a pending order with items; CancelOrder a pending
//     or confirmed one; ShipOrder a confirmed one.
package order
