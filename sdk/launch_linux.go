package sdk

import (
	"os/exec"
	"syscall"
)

// dieWithHost asks the kernel to kill the plugin when the host dies, even
// by SIGKILL; Serve's parent watch covers the rest.
func dieWithHost(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
