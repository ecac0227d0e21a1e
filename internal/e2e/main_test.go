package e2e

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind: a node
// that is stopped must stop everything it started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
