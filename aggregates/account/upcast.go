package account

import (
	"fmt"
	"math"

	"github.com/strata-es/strata/aggregates"
)

// withdrawnInCents reads MoneyWithdrawn v1, written by the first release
// with the amount in euros as a double, as v2 with integer cents. Schema
// resolution cannot do this: double to long is no Avro promotion, and the
// unit changes.
func withdrawnInCents(v1 map[string]any) ([]aggregates.Upcast, error) {
	euros, ok := v1["amount"].(float64)
	if !ok || math.IsNaN(euros) || math.IsInf(euros, 0) || math.Abs(euros) > math.MaxInt64/100 {
		return nil, fmt.Errorf("MoneyWithdrawn v1 amount %v is not a finite number of euros", v1["amount"])
	}
	cents := int64(math.Round(euros * 100))
	return []aggregates.Upcast{{Type: "MoneyWithdrawn", Version: 2, Data: map[string]any{"amount": cents}}}, nil
}
