package tree

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/routing"
)

// FuzzMachine drives one machine with an arbitrary sequence of events, as
// a hostile or confused set of peers would: IHAVE, GRAFT, PRUNE and payloads
// from members, strangers and itself, for the real tree and invented roots,
// with number lists of any length, interleaved with ticks, failed sends,
// RTT samples and members leaving and coming back. After every event:
//
//   - every output is addressed to a candidate of the current view (never a
//     stranger, a member outside the channel, an internal peer of another
//     org, or self);
//   - no IHAVE or GRAFT output carries more than MaxIHave numbers;
//   - the state stays within its caps (trees, missing entries, announcers,
//     timers, RTT samples), however many numbers were announced.
func FuzzMachine(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
	f.Add([]byte{1, 0, 200, 1, 1, 255, 2, 2, 3, 3, 4, 0, 7, 9, 0, 0})
	f.Add([]byte("graft prune ihave payload tick view"))
	f.Fuzz(runOps)
}

// runOps is one fuzz input: the events it encodes, checked after each.
func runOps(t *testing.T, ops []byte) {
	cfg := allEager()
	cfg.MaxMissing, cfg.MaxTrees, cfg.MaxAnnouncers, cfg.MaxIHave = 32, 3, 2, 8
	full := testView()
	m, err := New(cfg, "a0", rand.New(rand.NewPCG(7, 7)))
	if err != nil {
		t.Fatal(err)
	}
	view := full
	m.SetView(view)
	// Everyone the fuzzer may speak as: members, non-candidates, a
	// stranger and self.
	from := ids("a1", "a2", "r", "b0", "b1", "b2", "x", "stranger", "a0")
	roots := []ID{tid, {Channel: "c", Root: "b0"}, {Channel: "c", Root: "fake"}, {Channel: "other", Root: "r"}}
	now := t0
	r := &opReader{b: ops}
	for step := 0; !r.done(); step++ {
		p := from[r.next()%len(from)]
		id := roots[r.next()%len(roots)]
		switch op := r.next() % 9; op {
		case 0:
			m.Payload(p, id, uint64(r.next()), r.next()%2 == 0, now)
		case 1:
			m.IHave(p, id, r.numbers(), now)
		case 2:
			m.Graft(p, id, r.numbers(), now)
		case 3:
			m.Prune(p, id, r.next()%2 == 0, now)
		case 4:
			m.SendFailed(p, id, uint64(r.next()), now)
		case 5:
			m.ObserveRTT(p, time.Duration(r.next())*time.Millisecond)
		case 6:
			now = now.Add(time.Duration(r.next()) * 5 * time.Millisecond)
			m.Tick(now)
		case 7:
			m.Publish(id, uint64(r.next()), now)
		case 8:
			// A member leaves the view, or everyone comes back.
			if r.next()%2 == 0 {
				view = full
			} else {
				gone := from[r.next()%len(from)]
				view.Members = slices.DeleteFunc(slices.Clone(view.Members), func(m routing.Member) bool { return m.ID == gone })
			}
			m.SetView(view)
		}
		checkReady(t, step, m.Ready(), view, cfg)
		checkBounds(t, step, m, cfg)
	}
}

// opReader reads small integers from the fuzzer's bytes; past the end it
// reads zeros, and done reports it.
type opReader struct {
	b []byte
	i int
}

func (r *opReader) done() bool { return r.i >= len(r.b) }

func (r *opReader) next() int {
	if r.i >= len(r.b) {
		r.i++
		return 0
	}
	v := int(r.b[r.i])
	r.i++
	return v
}

// counting is 0, 1, 2, ...: the number lists are slices of it, so a long
// one costs the fuzzer nothing to build.
var counting = func() []uint64 {
	out := make([]uint64, 1_000_000+256)
	for i := range out {
		out[i] = uint64(i)
	}
	return out
}()

// numbers reads a list of block numbers: a length, then a start; a length
// byte of 255 announces a million numbers at once.
func (r *opReader) numbers() []uint64 {
	n := r.next()
	if n == 255 {
		n = 1_000_000
	}
	start := r.next()
	return counting[start : start+n : start+n]
}

// checkReady holds r to the view: every addressee a candidate of its tree's
// channel, every list within MaxIHave.
func checkReady(t *testing.T, step int, r Ready, v routing.View, cfg Config) {
	t.Helper()
	allowed := func(channel string, p peer.ID) bool {
		return slices.ContainsFunc(Candidates(v, channel, cfg.Doors), func(c Candidate) bool { return c.ID == p })
	}
	check := func(kind string, to peer.ID, id ID, n int) {
		if !allowed(id.Channel, to) {
			t.Fatalf("step %d: %s to %q for %v, not a candidate of the view", step, kind, to, id)
		}
		if n > cfg.MaxIHave {
			t.Fatalf("step %d: %s to %q of %d numbers, over MaxIHave %d", step, kind, to, n, cfg.MaxIHave)
		}
	}
	for _, s := range r.Payloads {
		check("payload", s.To, s.ID, 1)
	}
	for _, a := range r.IHaves {
		check("IHAVE", a.To, a.ID, len(a.Numbers))
	}
	for _, g := range r.Grafts {
		check("GRAFT", g.To, g.ID, len(g.Numbers))
	}
	for _, p := range r.Prunes {
		check("PRUNE", p.To, p.ID, 0)
	}
}

// checkBounds holds the machine's state to its caps. The test view has one
// channel of eight candidates at most and nine speakers, so RTT samples and
// timers are bounded by small multiples of the caps.
func checkBounds(t *testing.T, step int, m *Machine, cfg Config) {
	t.Helper()
	s := m.Stats()
	limits := []struct {
		name   string
		got, n int
	}{
		{"trees", s.Trees, cfg.MaxTrees},
		{"missing entries", s.Missing, cfg.MaxMissing * cfg.MaxTrees},
		{"announcers", s.Announcers, s.Missing * cfg.MaxAnnouncers},
		{"timers", s.Timers, 4*cfg.MaxMissing*cfg.MaxTrees + 64},
		{"RTT samples", s.RTTs, 16},
	}
	for _, l := range limits {
		if l.got > l.n {
			t.Fatalf("step %d: %d %s, bound %d (stats %+v)", step, l.got, l.name, l.n, s)
		}
	}
	if s.Channels > 1 {
		t.Fatalf("step %d: %d channels from one joined channel: %s", step, s.Channels, fmt.Sprint(s))
	}
}
