package testnet

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/fabgossip/fabgossip/internal/hostileframe"
	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/node/peerconfig"
	"github.com/fabgossip/fabgossip/transport"
)

// Bounds, from the hostile-peers issue: the target's resident set grows by
// at most 2× what the attacker sent, and never by more than 64 MiB; its CPU
// by at most 50 ms per MiB sent, beyond its idle work. Each has a slack for
// what /proc can resolve, stated in the report: RSS moves by whole pages
// and the Go runtime grows its heap in chunks, so a few kilobytes sent
// cannot be told from a MiB of noise; CPU times are in 10 ms ticks, the
// idle work (heartbeats, pulls) comes in bursts that an average does not
// remove from a window of a second or two, and an ejection has a fixed cost
// of its own (closing the connections, refusing the ejected peer's redials,
// each one a secure-channel handshake first).
const (
	rssFactor    = 2
	rssCap       = 64 << 20
	rssSlack     = 2 << 20
	cpuPerMiB    = 50 * time.Millisecond
	cpuSlack     = 100 * time.Millisecond
	hostileFrame = 4 << 20 // the largest frame a receiver accepts
	// ejectedNodeCPU is the CPU allowed beyond the slack for ejecting an
	// attacker that is a whole node (a library peer): ejected, it keeps
	// redialing, and each attempt is a refused secure handshake. CI's short
	// runs measured up to 110 ms beyond idle for one such ejection (the
	// bound without it was 101 ms).
	ejectedNodeCPU = 100 * time.Millisecond
	// floodRSSCeiling bounds the target's resident set while an admitted
	// member and outsiders flood it together.
	floodRSSCeiling = 256 << 20
	// helloDeadline is the target's handshake timeout (node's
	// handshakeTimeout) and slack for the disconnect to be seen.
	helloDeadline = 10*time.Second + 2*time.Second
	// stallers is how many stalled handshakes the genuine-peer attack
	// holds open.
	stallers = 50
)

type suite struct {
	o                 HostileOptions
	target, honest    *process
	insider, foreign  peerconfig.GeneratedPeer
	replayer, garbler peerconfig.GeneratedPeer // members of ch ejected by their attacks
	replayed          node.Block               // the block the replayer published
	idle              float64                  // the target's idle CPU, CPU-seconds per second

	mu      sync.Mutex
	members []*peerconfig.Peer // library peers started by join
	hosts   int                // outsider hosts made so far, each on an address of its own
}

// attack is one entry of the suite. run returns the bytes it sent, what the
// target did, and whether that is what the target must do; costBound
// holds the target's memory and CPU to the bounds above as well.
type attack struct {
	name, what, bound string
	costBound         bool
	// timing marks a bound on wall time against a baseline of the same
	// run: reported always, enforced only in the full form, since CI
	// machines are shared and noisy (Short).
	timing bool
	// rssCeiling, if set, is a bound on the target's peak resident set
	// whatever was sent.
	rssCeiling int64
	// extraCPU is added to cpuSlack: a fixed cost of the attack's outcome
	// that the bytes sent do not measure.
	extraCPU time.Duration
	// setup, if set, runs before the target's memory and CPU are first
	// read: what the attack needs that is not the attack (a member joining).
	setup func(ctx context.Context) error
	run   func(ctx context.Context) (sent int64, outcome string, ok bool, err error)
}

func (s *suite) pid() int { return s.target.cmd.Process.Pid }

func (s *suite) reps(full int) int {
	if s.o.Short {
		return max(1, full/3)
	}
	return full
}

// idleCPU measures the target's CPU time per second with nobody attacking.
func (s *suite) idleCPU(ctx context.Context) (float64, error) {
	const window = 2 * time.Second
	c0, err := procCPU(s.pid())
	if err != nil {
		return 0, err
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(window):
	}
	c1, err := procCPU(s.pid())
	if err != nil {
		return 0, err
	}
	return float64(c1-c0) / float64(time.Millisecond) / window.Seconds(), nil
}

// measure runs a, sampling the target's RSS every 20 ms, and holds the
// result to a's bounds.
func (s *suite) measure(ctx context.Context, a attack) (AttackResult, error) {
	res := AttackResult{Name: a.name, What: a.what, Bound: a.bound}
	if a.setup != nil {
		if err := a.setup(ctx); err != nil {
			return res, err
		}
	}
	// The previous attack's tail (queued frames, GC) is not this one's cost.
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(time.Second):
	}
	rss0, err := procRSS(s.pid())
	if err != nil {
		return res, err
	}
	cpu0, err := procCPU(s.pid())
	if err != nil {
		return res, err
	}
	idle := s.idle
	var peak atomic.Int64
	peak.Store(rss0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if r, err := procRSS(s.pid()); err == nil && r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	})
	start := time.Now()
	sent, out, ok, err := a.run(ctx)
	// Let the target finish what the attack queued before reading its CPU.
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err != nil {
		return res, err
	}
	cpu1, err := procCPU(s.pid())
	if err != nil {
		return res, err
	}
	res.SentBytes, res.Outcome, res.OK = sent, out, ok
	if a.timing && s.o.Short {
		res.Bound += " (timing: enforced without --short only)"
	}
	res.RSSBeforeMiB = float64(rss0) / (1 << 20)
	res.RSSPeakMiB = float64(peak.Load()) / (1 << 20)
	res.CPUMs = float64(cpu1-cpu0) / float64(time.Millisecond)
	if a.rssCeiling > 0 {
		if peak.Load() > a.rssCeiling {
			res.OK = false
			res.Outcome = outcome(res.Outcome, fmt.Sprintf("peak RSS %s over %s", fmtBytes(uint64(peak.Load())), fmtBytes(uint64(a.rssCeiling))))
		}
		res.Bound = outcome(res.Bound, fmt.Sprintf("peak RSS under %s", fmtBytes(uint64(a.rssCeiling))))
	}
	if a.costBound {
		grew := peak.Load() - rss0
		rssBound := min(int64(rssCap), rssFactor*sent+rssSlack)
		attackCPU := time.Duration(cpu1-cpu0) - time.Duration(idle*float64(time.Since(start)))
		cpuBound := time.Duration(float64(cpuPerMiB)*float64(sent)/(1<<20)) + cpuSlack + a.extraCPU
		var broke []string
		if grew > rssBound {
			broke = append(broke, fmt.Sprintf("RSS grew %s, bound %s", fmtBytes(uint64(grew)), fmtBytes(uint64(rssBound))))
		}
		if attackCPU > cpuBound {
			broke = append(broke, fmt.Sprintf("CPU beyond idle %v, bound %v", attackCPU.Round(time.Millisecond), cpuBound.Round(time.Millisecond)))
		}
		if len(broke) > 0 {
			res.OK = false
			res.Outcome = outcome(res.Outcome, fmt.Sprint(broke))
		}
		res.Bound = outcome(res.Bound, fmt.Sprintf("RSS +%s, CPU %v beyond idle (slack included)", fmtBytes(uint64(rssBound)), cpuBound.Round(time.Millisecond)))
	}
	return res, nil
}

func (s *suite) attacks() []attack {
	return []attack{
		{name: "unauthenticated push", what: fmt.Sprintf("%d frames of 4 MiB of empty envelopes on the push protocol, no hello", s.reps(6)),
			bound: "reset unread", costBound: true, run: s.unauthenticated(transport.ProtocolPush, emptyEnvelopes(hostileFrame), s.reps(6))},
		{name: "unauthenticated pull", what: fmt.Sprintf("%d fetch requests of 4 MiB of empty ranges, no hello", s.reps(6)),
			bound: "reset unread, nothing answered", costBound: true, run: s.unauthenticated(transport.ProtocolPull, emptyRanges(hostileFrame), s.reps(6))},
		{name: "outsider hello", what: "a hello whose alive is garbage, then read everything the target sends",
			bound: "0 bytes back, disconnected", run: s.garbageHello},
		{name: "stalled handshake", what: "connect, open the hello, send one byte of its length and stall; a second connection that never opens a stream",
			bound: fmt.Sprintf("both disconnected within %v", helloDeadline), run: s.stalledHandshake},
		{name: "stallers and a genuine peer", what: fmt.Sprintf("%d stalled hellos held open while a genuine new peer joins", stallers),
			bound: "the genuine peer admitted within 2× the time it takes with none", timing: true, run: s.stallersAndGenuine},
		{name: "insider flood", what: fmt.Sprintf("%v of push frames at full speed from an admitted member: 3.6 MiB each, of well-formed blocks for a channel the target has not joined", s.o.Flood),
			bound: "stays admitted (honest-looking refusals cost no score)", costBound: true, setup: s.joinFn(s.insider), run: s.insiderFlood},
		{name: "honest traffic under flood", what: fmt.Sprintf("an honest peer publishes %d blocks at 10/s, first alone, then while the admitted member and an outsider flood the target at full speed", s.underFloodBlocks()),
			bound: "every block delivered both times; the flooded p99 under 2× the quiet one", timing: true,
			rssCeiling: floodRSSCeiling, setup: s.joinFn(s.insider), run: s.honestUnderFlood},
		{name: "replayed hello", what: "an outsider presents the honest peer's own alive, genuinely signed",
			bound: "refused, nothing answered, disconnected", costBound: true, run: s.helloReplay},
		{name: "block replays", what: "an admitted member of the channel publishes a block, then pushes frames of 20 copies of it again and again",
			bound: "ejected (disconnected, kept out), the block delivered once", costBound: true, setup: s.publishToReplay, run: s.blockReplays,
			extraCPU: ejectedNodeCPU},
		{name: "member garbage", what: "an admitted member sends 4 KiB frames of bytes that never decode, on the push and the pull protocol in turn",
			bound: "ejected, nothing answered", costBound: true, setup: s.joinFn(s.garbler), run: s.memberGarbage, extraCPU: ejectedNodeCPU},
		{name: "insider forgeries", what: "an admitted member of the channel pushes frames of 20 blocks with bad signatures",
			bound: "ejected (disconnected, kept out), nothing delivered", costBound: true, setup: s.joinFn(s.insider), run: s.forgeries, extraCPU: ejectedNodeCPU},
		{name: "foreign peer over the caps", what: "an admitted peer of an org outside the channel pushes frames of 2× MaxBatchEnvelopes empty envelopes",
			bound: "ejected (disconnected, kept out)", costBound: true, run: s.overCaps, extraCPU: ejectedNodeCPU},
		{name: "outsider flood", what: fmt.Sprintf("%v of 4 MiB push frames at full speed from one outsider address, 4 connections at a time, each with a fresh key", s.o.Flood),
			bound: "every stream reset", costBound: true, run: s.flood},
	}
}

// emptyEnvelopes is a push frame whose body is size bytes of nothing but
// empty envelopes: at 4 MiB, the frame that once decoded into 2 million.
func emptyEnvelopes(size int) []byte {
	return protowire.AppendBytes(nil, hostileframe.EmptyEnvelopes(size))
}

// emptyRanges is a pull frame of about size bytes: a fetch request of
// empty ranges.
func emptyRanges(size int) []byte {
	return protowire.AppendBytes(nil, hostileframe.EmptyRanges(size))
}

// outsider is a fresh libp2p host with a key of its own, connected to the
// target.
func (s *suite) outsider(ctx context.Context) (host.Host, error) {
	s.mu.Lock()
	s.hosts++
	n := s.hosts
	s.mu.Unlock()
	return s.outsiderAt(ctx, fmt.Sprintf("127.0.%d.%d", 1+n/250, 1+n%250))
}

// floodAddr is the one address of the flooding outsider.
const floodAddr = "127.0.0.2"

// outsiderAt is an outsider host with a key of its own, on ip (of
// 127.0.0.0/8), connected to the target. The target exempts only
// 127.0.0.1, where the honest peers are, from libp2p's per-address
// connection limits, so an outsider meets the limits it would on a
// network: one address is one outsider.
func (s *suite) outsiderAt(ctx context.Context, ip string) (host.Host, error) {
	key, _, err := crypto.GenerateEd25519Key(crand.Reader)
	if err != nil {
		return nil, err
	}
	h, err := newLoopbackHost(key, fmt.Sprintf("/ip4/%s/tcp/0", ip))
	if err != nil {
		return nil, err
	}
	if err := h.Connect(ctx, s.targetInfo()); err != nil {
		_ = h.Close()
		return nil, err
	}
	return h, nil
}

func (s *suite) targetInfo() peer.AddrInfo {
	ai := peer.AddrInfo{ID: s.target.peer.ID}
	for _, a := range s.target.info.Addrs {
		if m, err := ma.NewMultiaddr(a); err == nil {
			if info, err := peer.AddrInfoFromP2pAddr(m); err == nil {
				ai.Addrs = append(ai.Addrs, info.Addrs...)
			}
		}
	}
	return ai
}

// write opens a stream of pid from h to the target, writes frame and reads
// whatever comes back until the stream ends. It returns the bytes written
// and read; a reset stream is not an error.
func (s *suite) write(ctx context.Context, h host.Host, pid protocol.ID, frame []byte) (wrote, read int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := h.NewStream(ctx, s.target.peer.ID, pid)
	if err != nil {
		return 0, 0, nil // refused at open: nothing sent
	}
	defer func() { _ = st.Reset() }()
	_ = st.SetDeadline(time.Now().Add(5 * time.Second))
	n, _ := st.Write(frame)
	_ = st.CloseWrite()
	m, _ := io.Copy(io.Discard, st)
	return int64(n), m, nil
}

// unauthenticated writes n frames of pid from fresh outsiders.
func (s *suite) unauthenticated(pid protocol.ID, frame []byte, n int) func(ctx context.Context) (int64, string, bool, error) {
	return func(ctx context.Context) (int64, string, bool, error) {
		h, err := s.outsider(ctx)
		if err != nil {
			return 0, "", false, err
		}
		defer h.Close()
		var sent, got int64
		for range n {
			w, r, err := s.write(ctx, h, pid, frame)
			if err != nil {
				return sent, "", false, err
			}
			sent += w
			got += r
		}
		ok := got == 0
		return sent, fmt.Sprintf("%s of %s taken before the reset, %d bytes answered", fmtBytes(uint64(sent)), fmtBytes(uint64(n*len(frame))), got), ok, nil
	}
}

// waitDisconnected waits up to limit for h to lose its connection to p and
// returns how long that took, or -1.
func waitDisconnected(ctx context.Context, h host.Host, p peer.ID, limit time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < limit && ctx.Err() == nil {
		if h.Network().Connectedness(p) != network.Connected {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return -1
}

func (s *suite) stalledHandshake(ctx context.Context) (int64, string, bool, error) {
	staller, err := s.outsider(ctx)
	if err != nil {
		return 0, "", false, err
	}
	defer staller.Close()
	silent, err := s.outsider(ctx)
	if err != nil {
		return 0, "", false, err
	}
	defer silent.Close()
	st, err := staller.NewStream(ctx, s.target.peer.ID, transport.ProtocolHello)
	if err != nil {
		return 0, "", false, err
	}
	defer func() { _ = st.Reset() }()
	if _, err := st.Write([]byte{0x80}); err != nil { // an unfinished length prefix
		return 0, "", false, err
	}
	var stalledGone, silentGone time.Duration
	var wg sync.WaitGroup
	wg.Go(func() { stalledGone = waitDisconnected(ctx, staller, s.target.peer.ID, helloDeadline) })
	wg.Go(func() { silentGone = waitDisconnected(ctx, silent, s.target.peer.ID, helloDeadline) })
	wg.Wait()
	ok := stalledGone >= 0 && silentGone >= 0
	return 1, fmt.Sprintf("stalled hello disconnected after %s, silent connection after %s", dur(stalledGone), dur(silentGone)), ok, nil
}

func dur(d time.Duration) string {
	if d < 0 {
		return "never (within the bound)"
	}
	return d.Round(10 * time.Millisecond).String()
}

// stallersAndGenuine times a genuine new peer's admission (the target lists
// it as a live member) with nobody stalling, using the foreign member, and
// then the insider's with stallers stalled hellos open.
func (s *suite) stallersAndGenuine(ctx context.Context) (int64, string, bool, error) {
	base, err := s.join(ctx, s.foreign)
	if err != nil {
		return 0, "", false, err
	}
	var hosts []host.Host
	defer func() {
		for _, h := range hosts {
			_ = h.Close()
		}
	}()
	for range stallers {
		h, err := s.outsider(ctx)
		if err != nil {
			return 0, "", false, fmt.Errorf("staller: %w", err)
		}
		hosts = append(hosts, h)
		if st, err := h.NewStream(ctx, s.target.peer.ID, transport.ProtocolHello); err == nil {
			_, _ = st.Write([]byte{0x80})
		}
	}
	loaded, err := s.join(ctx, s.insider)
	if err != nil {
		return 0, "", false, err
	}
	bound := max(2*base, base+500*time.Millisecond) // the admin API is polled every 50 ms
	return int64(stallers), fmt.Sprintf("admitted in %v alone, %v with %d stallers", base.Round(time.Millisecond), loaded.Round(time.Millisecond), stallers), s.o.Short || loaded <= bound, nil
}
