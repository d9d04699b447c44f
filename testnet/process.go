package testnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fabgossip/fabgossip/node/admin"
	"github.com/fabgossip/fabgossip/node/peerconfig"
)

// stopTimeout is how long a peer process has to shut down after SIGTERM
// before it is killed.
const stopTimeout = 10 * time.Second

// pollInterval paces the waits that have no event to wait on: a ready file
// appearing, a peer's view converging.
const pollInterval = 50 * time.Millisecond

// process is one peer running as an OS process: `fabgossip peer` started
// from the binary with the peer's generated config.
type process struct {
	peer      peerconfig.GeneratedPeer
	bootstrap []string
	cmd       *exec.Cmd
	logPath   string
	readyPath string
	done      chan struct{} // closed when the process has exited and been waited for
	waitErr   error         // read after done
	killed    atomic.Bool   // set before the testnet kills it on purpose

	info   peerconfig.Info // from the ready file
	client *admin.Client
}

// startProcess starts bin as the peer g, with bootstrap addresses, logging
// to a file in the peer's directory (appended to, so that a restarted peer's
// log follows its previous run's). The process is stopped (SIGTERM, then
// SIGKILL after stopTimeout) when ctx ends; wait for it on done.
func startProcess(ctx context.Context, bin string, g peerconfig.GeneratedPeer, bootstrap []string, logLevel string, extra ...string) (*process, error) {
	p := &process{
		peer:      g,
		bootstrap: bootstrap,
		logPath:   filepath.Join(g.Dir, "peer.log"),
		readyPath: filepath.Join(g.Dir, "ready.json"),
		done:      make(chan struct{}),
	}
	// A previous run's ready file would announce a dead admin API.
	if err := os.Remove(p.readyPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	logFile, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	args := []string{"peer", "--config", g.Config, "--ready-file", p.readyPath, "--log-level", logLevel}
	if len(bootstrap) > 0 {
		args = append(args, "--bootstrap", strings.Join(bootstrap, ","))
	}
	args = append(args, extra...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "GOLOG_LOG_LEVEL=error")
	detach(cmd)
	cmd.Cancel = func() error { return terminate(cmd) }
	cmd.WaitDelay = stopTimeout
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", g.Name, err)
	}
	p.cmd = cmd
	go func() {
		p.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// kill kills the process with SIGKILL, a crash at whatever it was doing, and
// waits until it has exited.
func (p *process) kill() error {
	p.killed.Store(true)
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p.peer.Name, err)
	}
	<-p.done
	return nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitError describes an unexpected exit, with the end of the peer's log.
func (p *process) exitError() error {
	return fmt.Errorf("peer %s exited (%v); last log lines:\n%s", p.peer.Name, p.waitErr, p.logTail(8))
}

// logTail returns the last n lines of the peer's log.
func (p *process) logTail(n int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return "  (no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	lines = lines[max(0, len(lines)-n):]
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}

// waitReady waits until the peer has written its ready file (it is started,
// with its admin API up) or the deadline passes, and then connects a client.
func (p *process) waitReady(ctx context.Context, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		data, err := os.ReadFile(p.readyPath)
		if err == nil && json.Unmarshal(data, &p.info) == nil && p.info.AdminURL != "" {
			p.client, err = admin.NewClient(p.info.AdminURL, "", nil)
			return err
		}
		select {
		case <-p.done:
			return p.exitError()
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("peer %s did not start in time; last log lines:\n%s", p.peer.Name, p.logTail(8))
			}
			return ctx.Err()
		case <-t.C:
		}
	}
}

// stopAll stops every process (its context is already cancelled, or is
// cancelled by the caller) and waits for each to exit.
func stopAll(cancel context.CancelFunc, procs []*process) {
	cancel()
	for _, p := range procs {
		<-p.done
	}
}

// bootstrapOf returns the addresses other peers bootstrap from p with.
func (p *process) bootstrapAddrs() []string {
	var out []string
	for _, a := range p.info.Addrs {
		// The loopback address is the one every local peer can reach.
		if bytes.Contains([]byte(a), []byte("/ip4/127.0.0.1/")) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = p.info.Addrs
	}
	return out
}
