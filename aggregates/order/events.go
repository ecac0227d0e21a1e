package order

// Created records that an order was placed; it is pending.
type Created struct {
	CustomerID string `json:"customer_id" avro:"customer_id"`
	Items      []Item `json:"items" avro:"items"`
	// CreatedAt is the decision time, in Unix milliseconds.
	CreatedAt int64 `json:"created_at" avro:"created_at"`
}

// ItemAdded records Qty more units of SKU on the order: a new line, or
// added to the qty of the line the order has.
type ItemAdded struct {
	SKU       string `json:"sku" avro:"sku"`
	Qty       int32  `json:"qty" avro:"qty"`
	UnitPrice int64  `json:"unit_price" avro:"unit_price"`
}

// ItemRemoved records that the line of SKU left the order.
type ItemRemoved struct {
	SKU string `json:"sku" avro:"sku"`
}

// Confirmed records that the order was accepted.
type Confirmed struct {
	ConfirmedAt int64 `json:"confirmed_at" avro:"confirmed_at"`
}

// Cancelled records that the order was called off.
type Cancelled struct {
	Reason      string `json:"reason" avro:"reason"`
	CancelledAt int64  `json:"cancelled_at" avro:"cancelled_at"`
}

// Shipped records that the order left with a carrier.
type Shipped struct {
	Carrier   string `json:"carrier" avro:"carrier"`
	Tracking  string `json:"tracking" avro:"tracking"`
	ShippedAt int64  `json:"shipped_at" avro:"shipped_at"`
}

func (Created) EventType() string     { return "OrderCreated" }
func (ItemAdded) EventType() string   { return "ItemAdded" }
func (ItemRemoved) EventType() string { return "ItemRemoved" }
func (Confirmed) EventType() string   { return "OrderConfirmed" }
func (Cancelled) EventType() string   { return "OrderCancelled" }
func (Shipped) EventType() string     { return "OrderShipped" }
