package testnet

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/node/peerconfig"
	"github.com/fabgossip/fabgossip/transport"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// The attacks by admitted peers (library peers run here with generated member
// identities), the floods, and the honest traffic timed during them.

// join starts g as a library peer in this process, bootstrapped to the
// target, and returns how long until the target lists it as live.
func (s *suite) join(ctx context.Context, g peerconfig.GeneratedPeer) (time.Duration, error) {
	cfg, err := peerconfig.Load(g.Config)
	if err != nil {
		return 0, err
	}
	cfg.Bootstrap = s.target.bootstrapAddrs()
	p, err := peerconfig.New(cfg, peerconfig.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := p.Start(ctx); err != nil {
		_ = p.Close()
		return 0, err
	}
	s.mu.Lock()
	s.members = append(s.members, p)
	s.mu.Unlock()
	if err := waitMember(ctx, s.target, g.ID.String(), time.Now().Add(s.o.StartTimeout)); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// member returns the running library peer of g.
func (s *suite) member(g peerconfig.GeneratedPeer) (*peerconfig.Peer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.members {
		if p.Host().ID() == g.ID {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%s was not started", g.Name)
}

// closeMembers closes the library peers.
func (s *suite) closeMembers() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, p := range s.members {
		errs = append(errs, p.Close())
	}
	s.members = nil
	return errors.Join(errs...)
}

// ejection sends frames from member g's own host until the target
// disconnects it, at most max frames, and reports what it took.
func (s *suite) ejection(ctx context.Context, g peerconfig.GeneratedPeer, frame []byte, maxFrames int) (int64, string, bool, error) {
	p, err := s.member(g)
	if err != nil {
		return 0, "", false, err
	}
	h := p.Host()
	var sent int64
	for i := range maxFrames {
		if h.Network().Connectedness(s.target.peer.ID) != network.Connected && i > 0 {
			break
		}
		w, _, err := s.write(ctx, h, transport.ProtocolPush, frame)
		if err != nil {
			return sent, "", false, err
		}
		sent += w
		if gone := waitDisconnected(ctx, h, s.target.peer.ID, 200*time.Millisecond); gone >= 0 {
			// Kept out: a redial is refused.
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			rerr := h.Connect(cctx, s.targetInfo())
			cancel()
			back := h.Network().Connectedness(s.target.peer.ID) == network.Connected && waitDisconnected(ctx, h, s.target.peer.ID, time.Second) < 0
			return sent, fmt.Sprintf("disconnected after %d frames; redial %s", i+1, redialText(rerr, back)), !back, nil
		}
	}
	return sent, fmt.Sprintf("still connected after %d frames", maxFrames), false, nil
}

func redialText(err error, back bool) string {
	switch {
	case back:
		return "let back in"
	case err != nil:
		return "refused"
	}
	return "closed again"
}

func (s *suite) overCaps(ctx context.Context) (int64, string, bool, error) {
	n := 2 * transport.DefaultConfig().MaxBatchEnvelopes
	return s.ejection(ctx, s.foreign, emptyEnvelopes(2*n), 20)
}

func (s *suite) forgeries(ctx context.Context) (int64, string, bool, error) {
	stranger, _, err := crypto.GenerateEd25519Key(crand.Reader)
	if err != nil {
		return 0, "", false, err
	}
	// The next block of the channel, claimed for the target as publisher
	// and signed by a stranger: each is checked and refused for its
	// signature (a number the target holds would be refused as a duplicate
	// before any check, which costs nothing and proves nothing).
	next, err := s.height(ctx)
	if err != nil {
		return 0, "", false, err
	}
	var envs []*wire.Envelope
	for i := range 20 {
		data := fmt.Appendf(nil, "forged %d", i)
		dh := sha256.Sum256(data)
		env, err := transport.Sign(stranger, &wire.Message{Content: &wire.Message_Block{Block: &wire.Block{
			Channel: "ch", Number: next, DataHash: dh[:], Data: data, Publisher: []byte(s.target.peer.ID)}}})
		if err != nil {
			return 0, "", false, err
		}
		envs = append(envs, env)
	}
	return s.ejectionAt(ctx, s.insider, envs, 20, next, fmt.Sprintf("height %d before and after", next))
}

// ejectionAt is ejection with frames of envs, and then the target's height
// must be want: say is the outcome's last part when it is.
func (s *suite) ejectionAt(ctx context.Context, g peerconfig.GeneratedPeer, envs []*wire.Envelope, maxFrames int, want uint64, say string) (int64, string, bool, error) {
	frame, err := transport.AppendFrame(nil, &wire.Batch{Envelopes: envs}, hostileFrame)
	if err != nil {
		return 0, "", false, err
	}
	sent, out, ok, err := s.ejection(ctx, g, frame, maxFrames)
	if err != nil {
		return sent, out, ok, err
	}
	h, err := s.height(ctx)
	if err != nil {
		return sent, out, false, err
	}
	if h != want {
		return sent, outcome(out, fmt.Sprintf("height %d, want %d", h, want)), false, nil
	}
	return sent, outcome(out, say), ok, nil
}

// height is the target's next expected block number of ch.
func (s *suite) height(ctx context.Context) (uint64, error) {
	st, err := s.target.client.Status(ctx)
	if err != nil {
		return 0, err
	}
	for _, c := range st.Channels {
		if c.Name == "ch" {
			return c.Height, nil
		}
	}
	return 0, errors.New("the target has no channel ch")
}

func (s *suite) flood(ctx context.Context) (int64, string, bool, error) {
	return s.floodFor(ctx, s.o.Flood)
}

// floodFor is the outsider's flood for d: from its one address, 4
// connections at a time, each with a fresh key, reconnecting as soon as
// the target disconnects one. A connection the target's resource manager
// refuses (per-address limits) is retried after refusedRetry.
func (s *suite) floodFor(ctx context.Context, d time.Duration) (int64, string, bool, error) {
	const refusedRetry = 50 * time.Millisecond
	frame := emptyEnvelopes(hostileFrame)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var sent, answered atomic.Int64
	var streams, hostsUsed, refused atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				h, err := s.outsiderAt(ctx, floodAddr)
				if err != nil {
					refused.Add(1)
					select {
					case <-ctx.Done():
					case <-time.After(refusedRetry):
					}
					continue
				}
				hostsUsed.Add(1)
				for ctx.Err() == nil && h.Network().Connectedness(s.target.peer.ID) == network.Connected {
					w, r, _ := s.write(ctx, h, transport.ProtocolPush, frame)
					sent.Add(w)
					answered.Add(r)
					streams.Add(1)
				}
				_ = h.Close()
			}
		})
	}
	wg.Wait()
	return sent.Load(), fmt.Sprintf("%d streams on %d connections (%d refused), %s taken, %d bytes answered",
		streams.Load(), hostsUsed.Load(), refused.Load(), fmtBytes(uint64(sent.Load())), answered.Load()), answered.Load() == 0, nil
}

// insiderFlood floods the target from the admitted insider with what an
// honest peer may send and the target refuses cheaply: blocks of a channel
// it has not joined, signed by nobody in particular, 4 KiB each.
func (s *suite) insiderFlood(ctx context.Context) (int64, string, bool, error) {
	return s.insiderFloodFor(ctx, s.o.Flood)
}

// insiderFloodFor is the insider's flood for d.
func (s *suite) insiderFloodFor(ctx context.Context, d time.Duration) (int64, string, bool, error) {
	p, err := s.member(s.insider)
	if err != nil {
		return 0, "", false, err
	}
	h := p.Host()
	b := &wire.Batch{}
	data := make([]byte, 4<<10)
	for i := range 900 { // 900 × 4 KiB: under the 4 MiB frame cap
		blk := &wire.Block{Channel: "not-joined", Number: uint64(i), Data: data}
		payload, err := proto.Marshal(&wire.Message{Content: &wire.Message_Block{Block: blk}})
		if err != nil {
			return 0, "", false, err
		}
		b.Envelopes = append(b.Envelopes, &wire.Envelope{Payload: payload, Signature: make([]byte, 64)})
	}
	frame, err := transport.AppendFrame(nil, b, hostileFrame)
	if err != nil {
		return 0, "", false, err
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	st, err := h.NewStream(ctx, s.target.peer.ID, transport.ProtocolPush)
	if err != nil {
		return 0, "", false, err
	}
	defer func() { _ = st.Reset() }()
	var sent int64
	frames := 0
	for ctx.Err() == nil {
		_ = st.SetWriteDeadline(time.Now().Add(time.Second))
		n, err := st.Write(frame)
		sent += int64(n)
		if err != nil {
			break
		}
		frames++
	}
	admitted := h.Network().Connectedness(s.target.peer.ID) == network.Connected
	return sent, fmt.Sprintf("%d frames (%s) written in %v; still admitted: %v", frames, fmtBytes(uint64(sent)), d, admitted), admitted, nil
}

// honestUnderFlood publishes blocks from the honest peer and times each to
// its delivery at the target: once with nobody attacking, once during the insider's and the outsiders'
// floods together, which last as long as the publishing (30 s in the full
// form).
func (s *suite) honestUnderFlood(ctx context.Context) (int64, string, bool, error) {
	n := s.underFloodBlocks()
	quiet, err := s.publishTimed(ctx, n)
	if err != nil {
		return 0, "", false, err
	}
	fctx, cancel := context.WithCancel(ctx)
	d := time.Duration(n)*100*time.Millisecond + 10*time.Second // cancelled once the blocks are in
	var wg sync.WaitGroup
	var sent atomic.Int64
	var still atomic.Bool
	var insiderErr error
	wg.Go(func() {
		w, _, admitted, err := s.insiderFloodFor(fctx, d)
		sent.Add(w)
		still.Store(admitted)
		insiderErr = err
	})
	wg.Go(func() { w, _, _, _ := s.floodFor(fctx, d); sent.Add(w) })
	time.Sleep(500 * time.Millisecond) // the floods at full speed first
	loud, err := s.publishTimed(ctx, n)
	cancel()
	wg.Wait()
	if err = errors.Join(err, insiderErr); err != nil {
		return sent.Load(), "", false, err
	}
	q50, q99 := percentile(quiet.lat, 0.50), percentile(quiet.lat, 0.99)
	l50, l99 := percentile(loud.lat, 0.50), percentile(loud.lat, 0.99)
	ok := quiet.delivered == n && loud.delivered == n && (s.o.Short || l99 < 2*q99)
	return sent.Load(), fmt.Sprintf("quiet: %d/%d delivered, p50 %.0f ms p99 %.0f ms; flooded: %d/%d, p50 %.0f ms p99 %.0f ms (%.1f×); the insider still admitted: %v",
		quiet.delivered, n, q50, q99, loud.delivered, n, l50, l99, l99/max(q99, 1), still.Load()), ok, nil
}

// underFloodBlocks is how many blocks the honest peer publishes in each
// half of honestUnderFlood: 30 s worth at 10/s, 2 s in the short form.
func (s *suite) underFloodBlocks() int {
	if s.o.Short {
		return 20
	}
	return 300
}

type timedRun struct {
	lat       []time.Duration
	delivered int
}

// publishTimed publishes n blocks on ch from the honest peer at 10/s and
// returns each one's latency from its publication at the honest peer to its
// delivery at the target, both as the peers recorded them (one machine, one
// clock): no polling in the figure.
func (s *suite) publishTimed(ctx context.Context, n int) (timedRun, error) {
	var run timedRun
	published := map[uint64]int64{} // block number -> PublishedAt
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	first := uint64(0)
	for i := range n {
		p, err := s.honest.client.Publish(ctx, "ch", fmt.Appendf(nil, "honest %d", i))
		if err != nil {
			return run, err
		}
		if i == 0 {
			first = p.Number
		}
		published[p.Number] = p.PublishedAt
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-t.C:
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	next := first
	for run.delivered < n && time.Now().Before(deadline) {
		list, err := s.target.client.Blocks(ctx, "ch", next, n, false)
		if err != nil {
			return run, err
		}
		for _, b := range list.Blocks {
			if b.Number != next {
				continue
			}
			next++
			if at, ok := published[b.Number]; ok && b.DeliveredAt > 0 {
				run.delivered++
				run.lat = append(run.lat, time.Duration(b.DeliveredAt-at))
			}
		}
		if run.delivered < n {
			time.Sleep(pollInterval)
		}
	}
	return run, nil
}
