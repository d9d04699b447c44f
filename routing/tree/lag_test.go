package tree

import (
	"testing"
	"time"
)

// firstGraftAt announces num from a2 at `at` and returns how long its first graft waits (its
// missing entry's deadline). The timers of earlier blocks, resolved since, are run first.
func firstGraftAt(t *testing.T, m *Machine, num uint64, at time.Time) time.Duration {
	t.Helper()
	m.Tick(at)
	if r := m.Ready(); len(r.Grafts) != 0 {
		t.Fatalf("grafts %v for blocks already held", r.Grafts)
	}
	m.IHave("a2", tid, []uint64{num}, at)
	m.Ready()
	e := m.channels[tid.Channel].trees[tid.Root].missing[num]
	if e == nil {
		t.Fatalf("block %d: not missing after its IHAVE", num)
	}
	return e.deadline.Sub(at)
}

// TestLagFromLateEagerPayloads: blocks announced by a lazy link and then pushed, 80 ms later, by
// the eager parent teach the machine to wait longer than 80 ms before the first graft.
func TestLagFromLateEagerPayloads(t *testing.T) {
	cfg := allEager()
	m := newMachine(t, cfg, "a0", testView())
	m.Payload("a1", tid, 1, true, t0)
	at := t0
	for num := uint64(2); num < 2+lagSamples/4; num++ {
		if w := firstGraftAt(t, m, num, at); w >= 2*cfg.GraftTimeout {
			t.Fatalf("block %d: waited %v before any lag was seen", num, w)
		}
		m.Payload("a1", tid, num, true, at.Add(80*time.Millisecond))
		at = at.Add(time.Second)
	}
	if w := firstGraftAt(t, m, 2+lagSamples/4, at); w < 160*time.Millisecond {
		t.Fatalf("after payloads 80 ms late, the first graft waits %v, want at least 2 × 80 ms", w)
	}
}

// TestLagFromCopyAfterGraft: when the graft fires first, its answer says nothing, but the eager
// parent's copy that follows it does.
func TestLagFromCopyAfterGraft(t *testing.T) {
	cfg := allEager()
	m := newMachine(t, cfg, "a0", testView())
	m.Payload("a1", tid, 1, true, t0)
	at := t0
	for num := uint64(2); num < 2+lagSamples/4; num++ {
		due := at.Add(firstGraftAt(t, m, num, at))
		m.Tick(due)
		if r := m.Ready(); len(r.Grafts) != 1 || r.Grafts[0].To != "a2" {
			t.Fatalf("block %d: grafts %v, want one to a2", num, r.Grafts)
		}
		m.Payload("a2", tid, num, true, due.Add(2*time.Millisecond))  // the answer
		m.Payload("a1", tid, num, false, at.Add(90*time.Millisecond)) // the slow eager copy
		at = at.Add(time.Second)
	}
	if w := firstGraftAt(t, m, 2+lagSamples/4, at); w < 180*time.Millisecond {
		t.Fatalf("after eager copies 90 ms behind their IHAVEs, the first graft waits %v, want at least 2 × 90 ms", w)
	}
}

// TestNoLagFromGraftAnswers: blocks that only a graft brings (lost on their eager link) leave the
// wait at the floor, so repair under loss stays quick.
func TestNoLagFromGraftAnswers(t *testing.T) {
	cfg := allEager()
	m := newMachine(t, cfg, "a0", testView())
	m.Payload("a1", tid, 1, true, t0)
	at := t0
	for num := uint64(2); num < 2+lagSamples; num++ {
		due := at.Add(firstGraftAt(t, m, num, at))
		m.Tick(due)
		m.Ready()
		m.Payload("a2", tid, num, true, due.Add(50*time.Millisecond))
		at = at.Add(time.Second)
	}
	if w := firstGraftAt(t, m, 2+lagSamples, at); w >= 2*cfg.GraftTimeout {
		t.Fatalf("after %d blocks repaired by graft, the first graft waits %v, want the floor %v", lagSamples, w, cfg.GraftTimeout)
	}
}
