package store_test

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/fabgossip/fabgossip/node/store"
)

// The crash writer: a child process that appends blocks to a store forever
// and reports each committed number on stdout.
const (
	crashWriterEnv = "FABGOSSIP_STORE_CRASH_WRITER" // the store directory
	crashNoSyncEnv = "FABGOSSIP_STORE_CRASH_NOSYNC" // non-empty: WithNoSync
	crashChannel   = "c"
)

// crashSize is the envelope size of block n: mostly 0.5–64 KiB (inline and
// overflow pages), every 17th 200 KiB, so commits take different times.
func crashSize(n uint64) int {
	if n%17 == 0 {
		return 200_000
	}
	return 512 + int(n*2654435761%(64<<10))
}

// crashWriter appends the blocks crashSize and testEnv define, in batches of
// 1..5, from the stored height on, and prints "n\n" once block n is
// committed (the call returned). It also rewrites the channel state. It runs
// until killed; it returns only on an error.
func crashWriter(dir string, noSync bool) int {
	var opts []store.Option
	if noSync {
		opts = append(opts, store.WithNoSync())
	}
	s, err := store.Open(dir, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 2
	}
	for {
		h, err := s.Height(crashChannel)
		if err != nil {
			fmt.Fprintln(os.Stderr, "height:", err)
			return 2
		}
		bs := make([]store.Block, 1+h%5)
		for i := range bs {
			n := h + uint64(i)
			env := testEnv(n, crashSize(n))
			bs[i] = store.Block{Number: n, Hash: testHash(env), Envelope: env}
		}
		if len(bs) == 1 {
			err = s.Append(crashChannel, h, bs[0].Hash, bs[0].Envelope)
		} else {
			err = s.AppendBatch(crashChannel, bs)
		}
		if err == nil {
			err = s.PutChannelState(crashChannel, store.ChannelState{Joined: true, Left: h%2 == 1})
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "append:", err)
			return 2
		}
		fmt.Printf("%d\n", bs[len(bs)-1].Number)
	}
}

// TestCrashLeavesPrefix starts the test binary as a crash writer on one
// store directory, kills it with SIGKILL at a random moment (after a seeded
// random number of reported commits, zero included: then the kill may hit
// Open's recovery), reopens the store and checks it: every block present has
// the right content and checksum, the blocks form the prefix 0..height-1,
// the height covers every number the child reported committed, and the
// height never went back. Rounds alternate between fsync'd and NoSync
// commits: both survive the death of the process.
func TestCrashLeavesPrefix(t *testing.T) {
	rounds := 16
	if testing.Short() {
		rounds = 4
	}
	rng := rand.New(rand.NewPCG(2026, 8))
	dir := t.TempDir()
	var committed int64 = -1 // highest number a child reported committed
	var height uint64
	for round := range rounds {
		noSync := round%2 == 1
		target := int64(rng.IntN(40)) // reported commits to wait for before the kill
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashWriterEnv+"="+dir)
		if noSync {
			cmd.Env = append(cmd.Env, crashNoSyncEnv+"=1")
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(out)
		seen := int64(0)
		killed := false
		kill := func() {
			if !killed {
				killed = true
				_ = cmd.Process.Kill() // SIGKILL
			}
		}
		if target == 0 {
			kill()
		}
		for lines.Scan() {
			n, err := strconv.ParseInt(strings.TrimSpace(lines.Text()), 10, 64)
			if err != nil {
				kill()
				t.Fatalf("round %d: child printed %q", round, lines.Text())
			}
			committed = max(committed, n)
			if seen++; seen >= target {
				kill()
			}
		}
		_ = cmd.Wait()
		if !killed {
			t.Fatalf("round %d: child exited by itself: %s", round, stderr.String())
		}

		h := verifyCrashStore(t, dir)
		t.Logf("round %d (noSync %v): killed after %d reports; committed ≥ %d, height %d", round, noSync, seen, committed, h)
		if int64(h) < committed+1 {
			t.Fatalf("round %d: height %d after the child reported block %d committed", round, h, committed)
		}
		if h < height {
			t.Fatalf("round %d: height went back from %d to %d", round, height, h)
		}
		height = h
	}
	if height == 0 {
		t.Fatal("no round committed a block")
	}
}

// verifyCrashStore opens the crash writer's store with every checksum
// verified and checks that it holds exactly the blocks 0..height-1 with the
// content the writer wrote, and a readable channel state. It returns height.
func verifyCrashStore(t *testing.T, dir string) uint64 {
	t.Helper()
	s, err := store.Open(dir, store.WithVerifyTail(-1))
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	h, err := s.Height(crashChannel)
	if err != nil {
		t.Fatal(err)
	}
	next := uint64(0)
	for next < h {
		before := next
		err := s.Range(crashChannel, next, 64, 8<<20, func(n uint64, env []byte) bool {
			if n != next || !bytes.Equal(env, testEnv(n, crashSize(n))) {
				t.Errorf("block %d: wrong number or content (expected block %d)", n, next)
				return false
			}
			next++
			return true
		})
		if err != nil || next == before {
			t.Fatalf("Range from %d (height %d): %v", before, h, err)
		}
	}
	if h > 0 {
		want := testHash(testEnv(h-1, crashSize(h-1)))
		if got, err := s.LastHash(crashChannel); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("LastHash = %x, %v; want %x", got, err, want)
		}
	}
	if _, err := s.Get(crashChannel, h); err == nil {
		t.Fatalf("block %d readable beyond the height", h)
	}
	if _, err := s.ChannelStates(); err != nil {
		t.Fatalf("ChannelStates: %v", err)
	}
	return h
}
