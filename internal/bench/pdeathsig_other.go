//go:build !linux

package bench

import "os/exec"

// dieWithParent: only Linux can tie a child's life to its parent's; the
// memory scenario, the only user, needs Linux's /proc anyway.
func dieWithParent(*exec.Cmd) {}
