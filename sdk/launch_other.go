//go:build !linux

package sdk

import "os/exec"

// dieWithHost: outside Linux, Serve's parent watch ends orphaned plugins.
func dieWithHost(*exec.Cmd) {}
