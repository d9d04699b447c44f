//go:build !unix

package testnet

import "os/exec"

func detach(*exec.Cmd) {}

// terminate stops a peer process; without signals it cannot be graceful.
func terminate(cmd *exec.Cmd) error {
	return cmd.Process.Kill()
}
