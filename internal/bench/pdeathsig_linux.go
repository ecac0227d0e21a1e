package bench

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the child get SIGTERM if this process dies first
// (killed, or a test binary's timeout), so no strata serve outlives a
// bench that cannot stop it.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
