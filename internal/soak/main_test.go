package soak

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a soak leaves goroutines behind (idle
// keep-alive connections of the HTTP clients aside).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"), goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
}
