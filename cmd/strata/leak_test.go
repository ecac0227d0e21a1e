package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if 'strata dev' leaves goroutines behind
// after Ctrl-C.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"), goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
}
