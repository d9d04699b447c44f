package shape

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// DelayBuffer is the most bytes a delayed stream holds between their arrival
// and their release. It bounds the memory of a stream whose reader is slow,
// and the stream's throughput to DelayBuffer ÷ latency (160 MiB/s at 25 ms,
// far above the egress limit), since once it is full the stream stops
// reading and the sender waits for the muxer's window, as on a real link
// with that much buffering.
const DelayBuffer = 4 << 20

// delayChunk is the most a delayed stream's pump reads at once.
const delayChunk = 32 << 10

// errReadClosed is what a delayed stream's Read returns after Close or
// CloseRead through the wrapper.
var errReadClosed = errors.New("shape: stream closed for reading")

// Delay gives every stream of the hosts it wraps a one-way latency on what
// it reads, chosen per remote peer.
//
// The delay is applied on the reading side, per stream: a pump goroutine
// reads whatever arrives as soon as it arrives, stamps each chunk with its
// arrival time, and Read hands it out no earlier than arrival + latency, in
// order. Both ends of a link wrap their hosts, so each direction is delayed
// once, by the receiver. Delaying reads rather than writes keeps writers
// from ever blocking on the latency: the stream is a pipe of that latency,
// whose throughput is the sender's (its egress limit, the muxer's window)
// and not window ÷ latency, so a 128 KiB block costs one latency, not one
// per write. The pump reads ahead only up to DelayBuffer bytes. Streams that
// are never read (a push stream's opener) never start a pump.
//
// Only the bytes of the wrapped streams are delayed: libp2p's own traffic
// (the TCP, security and muxer handshakes, multistream negotiation,
// identify, the muxer's window updates) is not. A nil *Delay delays nothing.
type Delay struct {
	latency func(remote peer.ID) time.Duration
	pumps   pumpGroup
}

// NewDelay returns the delay whose one-way latency from remote is
// latency(remote) (0 or less: none).
func NewDelay(latency func(remote peer.ID) time.Duration) *Delay {
	return &Delay{latency: latency}
}

// Wrap returns h with its streams delayed: those it opens (NewStream) and
// accepts (SetStreamHandler, SetStreamHandlerMatch). For a nil d, Wrap
// returns h.
func (d *Delay) Wrap(h host.Host) host.Host {
	if d == nil {
		return h
	}
	return &delayHost{Host: h, d: d}
}

// Wait stops new pumps and waits for the running ones: call it after the
// wrapped hosts are closed (which ends every stream, and so every pump). A
// stream first read after Wait fails with net.ErrClosed (its host is
// closed). Idempotent; a no-op for a nil d.
func (d *Delay) Wait() {
	if d != nil {
		d.pumps.closeAndWait()
	}
}

// delay wraps s in the latency of its remote peer.
func (d *Delay) delay(s network.Stream) network.Stream {
	lat := d.latency(s.Conn().RemotePeer())
	if lat <= 0 {
		return s
	}
	return newDelayedStream(s, lat, DelayBuffer, &d.pumps)
}

// delayHost is a host whose streams are delayed.
type delayHost struct {
	host.Host
	d *Delay
}

var _ host.Host = (*delayHost)(nil)

func (h *delayHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return h.d.delay(s), nil
}

func (h *delayHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) { handler(h.d.delay(s)) })
}

func (h *delayHost) SetStreamHandlerMatch(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, match, func(s network.Stream) { handler(h.d.delay(s)) })
}

// chunk is bytes a delayed stream read, readable from at on.
type chunk struct {
	data []byte
	at   time.Time
}

// delayedStream is a stream whose reads are delayed by latency (see Delay).
// Writes, CloseWrite and the write deadline go straight to the stream. The
// read deadline is the wrapper's own: it bounds Read's wait for released
// data, and is not passed on, so that it never ends the pump.
type delayedStream struct {
	network.Stream
	latency time.Duration
	limit   int
	pumps   *pumpGroup

	mu       sync.Mutex
	queue    []chunk // arrived and not yet read, release times ascending
	buffered int     // bytes in queue
	readErr  error   // the pump's last read error (io.EOF, a reset), readable from errAt on
	errAt    time.Time
	deadline time.Time // the read deadline
	started  bool      // the pump was started (pumped will be closed)
	closed   error     // why Read ends early: Close, CloseRead or Reset through the wrapper

	arrived  chan struct{} // cap 1: the pump queued a chunk or an error
	room     chan struct{} // cap 1: Read took bytes out of the queue
	rearm    chan struct{} // cap 1: the read deadline changed
	done     chan struct{} // closed with closed
	pumped   chan struct{} // closed when the pump has returned
	doneOnce sync.Once
}

func newDelayedStream(s network.Stream, latency time.Duration, limit int, pumps *pumpGroup) *delayedStream {
	return &delayedStream{
		Stream: s, latency: latency, limit: limit, pumps: pumps,
		arrived: make(chan struct{}, 1), room: make(chan struct{}, 1), rearm: make(chan struct{}, 1),
		done: make(chan struct{}), pumped: make(chan struct{}),
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// start starts the pump on the first Read. Once the Delay has stopped
// (its hosts are closed), it starts none and reads fail with net.ErrClosed.
func (s *delayedStream) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed != nil {
		return
	}
	s.started = true
	if !s.pumps.add() {
		s.readErr, s.errAt = net.ErrClosed, time.Time{}
		close(s.pumped)
		return
	}
	go s.pump()
}

// pump reads the stream as fast as data arrives and there is room, and
// queues what it read with its release time. It returns after the stream's
// first read error, or once the stream is closed or reset through the
// wrapper (which also ends a read in progress).
func (s *delayedStream) pump() {
	defer s.pumps.done()
	defer close(s.pumped)
	buf := make([]byte, delayChunk)
	for {
		s.mu.Lock()
		for s.buffered >= s.limit && s.closed == nil {
			s.mu.Unlock()
			select {
			case <-s.room:
			case <-s.done:
			}
			s.mu.Lock()
		}
		if s.closed != nil {
			s.mu.Unlock()
			return
		}
		room := min(len(buf), s.limit-s.buffered)
		s.mu.Unlock()

		n, err := s.Stream.Read(buf[:room])
		at := time.Now().Add(s.latency)
		s.mu.Lock()
		if n > 0 {
			s.queue = append(s.queue, chunk{data: bytes.Clone(buf[:n]), at: at})
			s.buffered += n
		}
		if err != nil {
			s.readErr, s.errAt = err, at
		}
		s.mu.Unlock()
		signal(s.arrived)
		if err != nil {
			return
		}
	}
}

// Read returns the bytes whose release time has come, as many as fit in p,
// waiting for the first; after the last byte, the stream's own error (io.EOF
// when the remote closed), itself delayed by the latency.
func (s *delayedStream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.start()
	for {
		s.mu.Lock()
		if s.closed != nil {
			err := s.closed
			s.mu.Unlock()
			return 0, err
		}
		now := time.Now()
		n := 0
		for len(s.queue) > 0 && n < len(p) && !s.queue[0].at.After(now) {
			c := &s.queue[0]
			m := copy(p[n:], c.data)
			n += m
			if c.data = c.data[m:]; len(c.data) == 0 {
				s.queue[0] = chunk{}
				s.queue = s.queue[1:]
			}
		}
		if n > 0 {
			s.buffered -= n
			s.mu.Unlock()
			signal(s.room)
			return n, nil
		}
		wait := time.Duration(-1) // nothing arrived: wait for the pump
		switch {
		case len(s.queue) > 0:
			wait = s.queue[0].at.Sub(now)
		case s.readErr != nil && !s.errAt.After(now):
			err := s.readErr
			s.mu.Unlock()
			return 0, err
		case s.readErr != nil:
			wait = s.errAt.Sub(now)
		}
		dl := s.deadline
		s.mu.Unlock()
		if !dl.IsZero() && !dl.After(now) {
			return 0, os.ErrDeadlineExceeded
		}
		s.wait(wait, dl, now)
	}
}

// wait blocks until d has passed (d < 0: no such wake-up), the deadline dl
// passes (zero: none), the pump queued something, the deadline changed, or
// the stream was closed.
func (s *delayedStream) wait(d time.Duration, dl, now time.Time) {
	var release, expire <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		release = t.C
	}
	if !dl.IsZero() {
		t := time.NewTimer(dl.Sub(now))
		defer t.Stop()
		expire = t.C
	}
	select {
	case <-release:
	case <-expire:
	case <-s.arrived:
	case <-s.rearm:
	case <-s.done:
	}
}

// finish ends reads through the wrapper with err (the first call wins), and
// returns whether a pump was started, which the caller then waits for after
// closing or resetting the stream.
func (s *delayedStream) finish(err error) bool {
	s.mu.Lock()
	if s.closed == nil {
		s.closed = err
	}
	started := s.started
	s.mu.Unlock()
	s.doneOnce.Do(func() { close(s.done) })
	return started
}

// end finishes reads with err, runs the stream's own close or reset, and
// waits for the pump, which that ends.
func (s *delayedStream) end(err error, f func() error) error {
	started := s.finish(err)
	ferr := f()
	if started {
		<-s.pumped
	}
	return ferr
}

func (s *delayedStream) Close() error { return s.end(errReadClosed, s.Stream.Close) }

func (s *delayedStream) CloseRead() error { return s.end(errReadClosed, s.Stream.CloseRead) }

func (s *delayedStream) Reset() error { return s.end(network.ErrReset, s.Stream.Reset) }

func (s *delayedStream) ResetWithError(code network.StreamErrorCode) error {
	return s.end(network.ErrReset, func() error { return s.Stream.ResetWithError(code) })
}

func (s *delayedStream) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
	signal(s.rearm)
	return nil
}

func (s *delayedStream) SetDeadline(t time.Time) error {
	_ = s.SetReadDeadline(t)
	return s.Stream.SetWriteDeadline(t)
}

// pumpGroup counts the running pumps of a Delay, so that its owner can wait
// for them; once closed it starts no more.
type pumpGroup struct {
	mu      sync.Mutex
	running int
	closed  bool
	idle    chan struct{} // closed when closed and running is 0
}

// add counts a new pump; false once the group is closed.
func (g *pumpGroup) add() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.running++
	return true
}

// done counts a pump out.
func (g *pumpGroup) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running--
	if g.closed && g.running == 0 {
		close(g.idle)
	}
}

// closeAndWait closes the group and waits for its pumps.
func (g *pumpGroup) closeAndWait() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		g.idle = make(chan struct{})
		if g.running == 0 {
			close(g.idle)
		}
	}
	idle := g.idle
	g.mu.Unlock()
	<-idle
}
