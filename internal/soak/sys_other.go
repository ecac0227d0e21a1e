//go:build !linux

package soak

import "syscall"

// sysProcAttr puts a child in its own process group, so that a Ctrl-C
// meant for the soak reaches the soak only (it stops the children in
// order).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
