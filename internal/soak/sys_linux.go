package soak

import "syscall"

// sysProcAttr puts a child in its own process group, so that a Ctrl-C
// meant for the soak reaches the soak only (it stops the children in
// order), and has the kernel kill it if the soak dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
