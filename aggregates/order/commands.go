package order

import "github.com/strata-es/strata/aggregates"

// Create places a new, pending order.
type Create struct {
	CustomerID string `json:"customer_id" avro:"customer_id"`
	// Items are the order's lines: 1 to MaxItems, each SKU once.
	Items []Item `json:"items" avro:"items"`
}

// AddItem adds Qty units of SKU at UnitPrice to a pending order: a new
// line, or more of a line the order has at the same price.
type AddItem struct {
	SKU       string `json:"sku" avro:"sku"`
	Qty       int32  `json:"qty" avro:"qty"`
	UnitPrice int64  `json:"unit_price" avro:"unit_price"`
}

// RemoveItem removes the line of SKU, all its units, from a pending order.
type RemoveItem struct {
	SKU string `json:"sku" avro:"sku"`
}

// Confirm accepts a pending order: its items no longer change.
type Confirm struct{}

// Cancel calls off an order that has not shipped.
type Cancel struct {
	Reason string `json:"reason" avro:"reason"`
}

// Ship records that a confirmed order left with Carrier.
type Ship struct {
	Carrier string `json:"carrier" avro:"carrier"`
	// Tracking is the carrier's tracking number, if it gave one.
	Tracking string `json:"tracking" avro:"tracking"`
}

func (Create) CommandType() string     { return "CreateOrder" }
func (AddItem) CommandType() string    { return "AddItem" }
func (RemoveItem) CommandType() string { return "RemoveItem" }
func (Confirm) CommandType() string    { return "ConfirmOrder" }
func (Cancel) CommandType() string     { return "CancelOrder" }
func (Ship) CommandType() string       { return "ShipOrder" }

// Bounds on free text, in bytes.
const (
	MaxReasonLength   = 500
	MaxCarrierLength  = 64
	MaxTrackingLength = 128
)

func (c Create) Validate() error {
	if c.CustomerID == "" {
		return aggregates.Invalid("customer_id is required")
	}
	if err := aggregates.CheckID(c.CustomerID); err != nil {
		return aggregates.Invalid("customer_id is not a valid ID: %v", err)
	}
	switch {
	case len(c.Items) == 0:
		return aggregates.Invalid("an order needs at least one item")
	case len(c.Items) > MaxItems:
		return aggregates.Invalid("an order has at most %d items, got %d", MaxItems, len(c.Items))
	}
	var total int64
	for i, it := range c.Items {
		if p := it.problem(); p != "" {
			return aggregates.Invalid("items[%d]: %s", i, p)
		}
		// At most MaxItems lines: a quadratic scan is cheaper than a map.
		for j := range i {
			if c.Items[j].SKU == it.SKU {
				return aggregates.Invalid("items[%d]: sku %q is also items[%d]: list each SKU once, with its whole qty", i, it.SKU, j)
			}
		}
		line, _ := it.total()
		var ok bool
		if total, ok = add(total, line); !ok {
			return aggregates.Invalid("items[%d]: the order total overflows", i)
		}
	}
	return nil
}

func (c AddItem) Validate() error {
	if p := Item(c).problem(); p != "" {
		return aggregates.Invalid("%s", p)
	}
	return nil
}

func (c RemoveItem) Validate() error {
	if p := skuProblem(c.SKU); p != "" {
		return aggregates.Invalid("%s", p)
	}
	return nil
}

func (c Cancel) Validate() error {
	switch {
	case c.Reason == "":
		return aggregates.Invalid("reason is required")
	case len(c.Reason) > MaxReasonLength:
		return aggregates.Invalid("reason is %d bytes, longer than %d", len(c.Reason), MaxReasonLength)
	}
	return nil
}

func (c Ship) Validate() error {
	switch {
	case c.Carrier == "":
		return aggregates.Invalid("carrier is required")
	case len(c.Carrier) > MaxCarrierLength:
		return aggregates.Invalid("carrier is %d bytes, longer than %d", len(c.Carrier), MaxCarrierLength)
	case len(c.Tracking) > MaxTrackingLength:
		return aggregates.Invalid("tracking is %d bytes, longer than %d", len(c.Tracking), MaxTrackingLength)
	}
	return nil
}
