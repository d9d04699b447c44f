package testnet

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fabgossip/fabgossip/node/admin"
)

// TestCrashRestartProcesses is the real-process crash test: 2 orgs x 2 peers
// as fabgossip processes, one channel, 210 blocks at 40 per second. The
// peer that publishes nothing and is in org1 (peer1.org1) is killed with
// SIGKILL three times mid-stream, while it is writing blocks, and restarted
// from its data directory each time. After each kill its store must open
// and hold every block it was seen to deliver; after each restart the
// process must come up at least at that height and deliver on from exactly
// there. At the end its ledger, read through its admin API, must be the
// publisher's: blocks 0..209 in order, no gap, the same hashes, each
// chaining to the one before. The peers use the local preset, whose store
// does not fsync: a killed process loses nothing the kernel has (the fsync'd
// store is crash-tested by node/store).
func TestCrashRestartProcesses(t *testing.T) {
	dir := t.TempDir()
	bin := buildFabgossip(t, dir)

	const blocks, restarts = 210, 3
	o := DefaultProcessOptions()
	o.Orgs, o.PeersPerOrg, o.External, o.Channels = 2, 2, 1, 1
	o.Blocks, o.Rate, o.Restarts = blocks, 40, restarts
	o.Binary, o.Dir = bin, filepath.Join(dir, "net")
	o.StartTimeout, o.DeliveryTimeout = 20*time.Second, 20*time.Second
	var out bytes.Buffer
	o.Out = &out
	defer func() { t.Logf("testnet output:\n%s", out.String()) }()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r := &run{o: o, bin: bin, dir: o.Dir, start: time.Now(), victim: -1}
	if err := r.generate(); err != nil {
		t.Fatal(err)
	}
	procCtx, cancelProcs := context.WithCancel(context.Background())
	r.procCtx = procCtx
	defer func() { stopAll(cancelProcs, r.procs) }()
	if err := r.startPeers(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.waitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.peers[r.victim].Name; got != "peer1.org1" {
		t.Fatalf("victim %s, want peer1.org1 (publishes nothing)", got)
	}
	if err := r.disseminate(ctx); err != nil {
		t.Fatal(err)
	}

	if len(r.restarts) != restarts {
		t.Fatalf("%d kill/restart cycles, want %d", len(r.restarts), restarts)
	}
	for n, rec := range r.restarts {
		c := rec.channels[0]
		if rec.upAt.IsZero() || !rec.upAt.After(rec.restartedAt) || !rec.restartedAt.After(rec.killedAt) {
			t.Errorf("cycle %d: killed %v, restarted %v, up %v", n, rec.killedAt, rec.restartedAt, rec.upAt)
		}
		if c.storedHeight < c.seenBeforeKill || c.heightAtRestart < c.storedHeight {
			t.Errorf("cycle %d: seen %d delivered before the kill, store reopened at %d, restarted at %d",
				n, c.seenBeforeKill, c.storedHeight, c.heightAtRestart)
		}
		if c.storedHeight == 0 || int(c.storedHeight) >= blocks {
			t.Errorf("cycle %d: killed at height %d, not mid-stream", n, c.storedHeight)
		}
		if !c.firstDeliveryChecked || c.firstDeliveryAfter != c.storedHeight {
			t.Errorf("cycle %d: first delivery after the restart %d (checked %v), want block %d",
				n, c.firstDeliveryAfter, c.firstDeliveryChecked, c.storedHeight)
		}
	}
	if len(r.restartProblems) > 0 {
		t.Errorf("restart problems:\n%s", strings.Join(r.restartProblems, "\n"))
	}

	// The restarted peer's ledger against the publisher's, via their admin APIs.
	ch := r.channels[0]
	var pub *process
	for _, p := range r.procs {
		if p.peer.Name == ch.Publisher {
			pub = p
		}
	}
	victim := r.procs[r.victim]
	want := ledger(ctx, t, pub.client, ch.Name)
	got := ledger(ctx, t, victim.client, ch.Name)
	if len(want) != blocks || len(got) != blocks {
		t.Fatalf("publisher holds %d blocks, restarted peer %d; want %d", len(want), len(got), blocks)
	}
	for i := range got {
		switch {
		case got[i].Number != uint64(i):
			t.Fatalf("restarted peer: block %d at position %d", got[i].Number, i)
		case got[i].Hash != want[i].Hash:
			t.Fatalf("restarted peer: block %d hash %s, publisher's %s", i, got[i].Hash, want[i].Hash)
		case i > 0 && got[i].PreviousHash != got[i-1].Hash:
			t.Fatalf("restarted peer: block %d does not chain to block %d", i, i-1)
		}
	}
	st, err := victim.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, cs := range st.Channels {
		if cs.Name == ch.Name && cs.Height != blocks {
			t.Errorf("restarted peer at height %d, want %d", cs.Height, blocks)
		}
	}

	rep, err := r.report(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep.WriteTable(&out)
	if !rep.Passed || rep.Channels[0].Coverage != 1 || len(rep.Restarts) != restarts {
		t.Errorf("report: passed %v, coverage %v, %d restarts", rep.Passed, rep.Channels[0].Coverage, len(rep.Restarts))
	}
	if !strings.Contains(out.String(), "restart: peer1.org1 killed (SIGKILL)") {
		t.Errorf("the report does not name the restarted peer")
	}
}

// ledger reads every delivered block of ch from a peer's admin API, with
// data (served from the peer's store beyond its in-memory window).
func ledger(ctx context.Context, t *testing.T, c *admin.Client, ch string) []admin.BlockInfo {
	t.Helper()
	var out []admin.BlockInfo
	for {
		list, err := c.Blocks(ctx, ch, uint64(len(out)), 1000, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Blocks) == 0 {
			return out
		}
		out = append(out, list.Blocks...)
	}
}

// buildFabgossip builds the fabgossip binary into dir and returns its path.
func buildFabgossip(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "fabgossip")
	build := exec.Command("go", "build", "-o", bin, "github.com/fabgossip/fabgossip/cmd/fabgossip")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
