package order

import (
	"fmt"
	"math"
	"unicode"
	"unicode/utf8"
)

// Item is one line of an order: Qty units of SKU at UnitPrice each.
type Item struct {
	SKU string `json:"sku" avro:"sku"`
	Qty int32  `json:"qty" avro:"qty"`
	// UnitPrice is in minor units (cents); zero is a free item.
	UnitPrice int64 `json:"unit_price" avro:"unit_price"`
}

// Limits on what an order holds. They keep a state, and the snapshot and
// events that carry it, small.
const (
	// MaxItems is the most lines an order has.
	MaxItems = 100
	// MaxQty is the most units of one SKU on an order.
	MaxQty = 10_000
	// MaxSKULength bounds a SKU, in bytes.
	MaxSKULength = 64
)

// problem returns what is wrong with it on its own, or "".
func (it Item) problem() string {
	if p := skuProblem(it.SKU); p != "" {
		return p
	}
	switch {
	case it.Qty < 1 || it.Qty > MaxQty:
		return fmt.Sprintf("qty of %q must be 1 to %d, got %d", it.SKU, MaxQty, it.Qty)
	case it.UnitPrice < 0:
		return fmt.Sprintf("unit_price of %q must be zero or more, got %d", it.SKU, it.UnitPrice)
	}
	if _, ok := it.total(); !ok {
		return fmt.Sprintf("qty %d × unit_price %d of %q overflows the total", it.Qty, it.UnitPrice, it.SKU)
	}
	return ""
}

func skuProblem(sku string) string {
	switch {
	case sku == "":
		return "sku is required"
	case len(sku) > MaxSKULength:
		return fmt.Sprintf("sku is %d bytes, longer than %d", len(sku), MaxSKULength)
	case !utf8.ValidString(sku):
		return "sku is not valid UTF-8"
	}
	for _, r := range sku {
		if unicode.IsControl(r) {
			return fmt.Sprintf("sku %q contains a control character", sku)
		}
	}
	return ""
}

// total returns Qty × UnitPrice, and false if that is negative or does not
// fit in an int64.
func (it Item) total() (int64, bool) {
	if it.Qty < 0 || it.UnitPrice < 0 || it.Qty > 0 && it.UnitPrice > math.MaxInt64/int64(it.Qty) {
		return 0, false
	}
	return int64(it.Qty) * it.UnitPrice, true
}

// add returns a + b for a, b >= 0, and false if it does not fit in an int64.
func add(a, b int64) (int64, bool) {
	if b > math.MaxInt64-a {
		return 0, false
	}
	return a + b, true
}
