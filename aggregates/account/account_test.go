package account_test

import (
	"testing"

	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/aggregates/aggregatetest"
)

func TestScenarios(t *testing.T) {
	aggregatetest.Run(t, account.Type, "testdata/scenarios.txt")
}
