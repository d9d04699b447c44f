//go:build unix

package testnet

import (
	"os/exec"
	"syscall"
)

// detach puts a peer process in its own process group, so that a Ctrl-C in
// the terminal reaches only the testnet, which then stops its peers in
// order; on Linux the peer also gets SIGTERM if the testnet dies without
// stopping it.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = sysProcAttr()
}

// terminate asks a peer process to shut down gracefully.
func terminate(cmd *exec.Cmd) error {
	return cmd.Process.Signal(syscall.SIGTERM)
}
