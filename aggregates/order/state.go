package order

// Status is where an order is in its life.
type Status string

// The statuses. The zero Status is an order that does not exist yet.
const (
	StatusPending   Status = "pending"
	StatusConfirmed Status = "confirmed"
	StatusCancelled Status = "cancelled"
	StatusShipped   Status = "shipped"
)

// State is an order as its events made it.
//
// Evolve never changes a State's Items in place: a State, once made, can
// be kept (as a snapshot, or to decide again after a failed append) while
// newer ones are folded from it.
type State struct {
	Status     Status `json:"status" avro:"status"`
	CustomerID string `json:"customer_id" avro:"customer_id"`
	// Items are the order's lines in the order they were added.
	Items []Item `json:"items" avro:"items"`
	// Total is the sum of qty × unit_price over Items, in minor units.
	Total int64 `json:"total" avro:"total"`
	// CreatedAt is when the order was created, in Unix milliseconds.
	CreatedAt int64 `json:"created_at" avro:"created_at"`
}

// Exists reports whether the order was created.
func (s State) Exists() bool { return s.Status != "" }

// find returns the index of the line of sku, or -1.
func (s State) find(sku string) int {
	for i, it := range s.Items {
		if it.SKU == sku {
			return i
		}
	}
	return -1
}
