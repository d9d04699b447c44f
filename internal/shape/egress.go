package shape

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/time/rate"
)

// EgressBurst is the token bucket's depth, and the largest chunk a limited
// stream writes at once: 16 KiB, 1.3 ms of line time at 100 Mbit/s, so a
// block leaves at the line rate and not in one free burst.
const EgressBurst = 16 << 10

// ErrEgressStopped is what a Write waiting for tokens returns once the
// limiter is stopped (its owner is closing).
var ErrEgressStopped = errors.New("shape: egress limiter stopped")

// errWriteClosed is what a Write waiting for tokens returns when its stream
// is closed for writing meanwhile.
var errWriteClosed = errors.New("shape: stream closed while its write waited for egress tokens")

// Egress is a per-host egress limit: every host it wraps gets a token
// bucket of its own, shared by all the streams the host opens or accepts. A
// nil *Egress limits nothing.
type Egress struct {
	mbps   float64
	ctx    context.Context // cancelled by stop: every waiting Write gives up
	cancel context.CancelFunc
}

// NewEgress returns the limiter of mbps Mbit/s per host, or nil for mbps ≤ 0.
// Stop it when its hosts close.
func NewEgress(mbps float64) *Egress {
	if mbps <= 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Egress{mbps: mbps, ctx: ctx, cancel: cancel}
}

// BytesPerSecond is the limit in bytes per second.
func (e *Egress) BytesPerSecond() float64 { return e.mbps * 1e6 / 8 }

// newBucket returns a full token bucket for one host.
func (e *Egress) newBucket() *rate.Limiter {
	return rate.NewLimiter(rate.Limit(e.BytesPerSecond()), EgressBurst)
}

// Wrap returns h with its egress limited: one token bucket for every byte
// written to a stream it opens (NewStream) or accepts (SetStreamHandler,
// SetStreamHandlerMatch). Streams libp2p opens itself (identify, ping) are
// not limited. For a nil e, Wrap returns h.
func (e *Egress) Wrap(h host.Host) host.Host {
	if e == nil {
		return h
	}
	return &limitedHost{Host: h, e: e, bucket: e.newBucket()}
}

// Stop makes every Write waiting for tokens, now or later, fail. It is
// idempotent, and a no-op for a nil e. The owner calls it first in its
// close, so that closing its hosts never waits for a backlog of tokens.
func (e *Egress) Stop() {
	if e != nil {
		e.cancel()
	}
}

func (e *Egress) String() string {
	if e == nil {
		return "no egress limit"
	}
	return fmt.Sprintf("egress limit %g Mbit/s per host (one token bucket for all its streams, %d KiB burst)", e.mbps, EgressBurst>>10)
}

// limitedHost is a host whose streams share one egress token bucket.
type limitedHost struct {
	host.Host
	e      *Egress
	bucket *rate.Limiter
}

var _ host.Host = (*limitedHost)(nil)

func (h *limitedHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return h.limit(s), nil
}

func (h *limitedHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) { handler(h.limit(s)) })
}

func (h *limitedHost) SetStreamHandlerMatch(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, match, func(s network.Stream) { handler(h.limit(s)) })
}

func (h *limitedHost) limit(s network.Stream) *limitedStream {
	return newLimitedStream(s, h.e, h.bucket)
}

// limitedStream is a stream whose writes wait for its host's tokens, in
// chunks of at most EgressBurst bytes. A Write waiting for tokens gives up
// when the stream is closed for writing or reset through this wrapper, when
// its write deadline passes (os.ErrDeadlineExceeded, as a stream's own
// deadline would), or when the egress limiter stops. Reads are not limited.
type limitedStream struct {
	network.Stream
	e      *Egress
	bucket *rate.Limiter

	mu       sync.Mutex
	deadline time.Time // the write deadline, as last set through this wrapper
	done     chan struct{}
	doneErr  error // why done was closed
}

func newLimitedStream(s network.Stream, e *Egress, bucket *rate.Limiter) *limitedStream {
	return &limitedStream{Stream: s, e: e, bucket: bucket, done: make(chan struct{})}
}

// Write writes p in chunks of at most EgressBurst bytes, each once the
// host's bucket has the tokens for it. On an error it returns how many bytes
// the stream took.
func (s *limitedStream) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		c := min(len(p), EgressBurst)
		if err := s.wait(c); err != nil {
			return n, err
		}
		m, err := s.Stream.Write(p[:c])
		n += m
		if err != nil {
			return n, err
		}
		p = p[c:]
	}
	return n, nil
}

// wait takes n ≤ EgressBurst tokens from the bucket, waiting for them if
// need be; if it gives up, it hands back the tokens it reserved.
func (s *limitedStream) wait(n int) error {
	now := time.Now()
	r := s.bucket.ReserveN(now, n)
	if !r.OK() { // n > burst: cannot happen, Write chunks
		return fmt.Errorf("shape: egress chunk of %d bytes exceeds the bucket's %d", n, s.bucket.Burst())
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	s.mu.Lock()
	dl, done := s.deadline, s.done
	s.mu.Unlock()
	ready := time.NewTimer(d)
	defer ready.Stop()
	var expired <-chan time.Time
	if !dl.IsZero() && dl.Before(now.Add(d)) {
		t := time.NewTimer(dl.Sub(now))
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-ready.C:
		return nil
	case <-expired:
		r.Cancel()
		return os.ErrDeadlineExceeded
	case <-done:
		r.Cancel()
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.doneErr
	case <-s.e.ctx.Done():
		r.Cancel()
		return ErrEgressStopped
	}
}

// finish wakes a Write waiting for tokens with err (the first call wins).
func (s *limitedStream) finish(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.doneErr == nil {
		s.doneErr = err
		close(s.done)
	}
}

func (s *limitedStream) SetDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
	return s.Stream.SetDeadline(t)
}

func (s *limitedStream) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
	return s.Stream.SetWriteDeadline(t)
}

func (s *limitedStream) Close() error {
	s.finish(errWriteClosed)
	return s.Stream.Close()
}

func (s *limitedStream) CloseWrite() error {
	s.finish(errWriteClosed)
	return s.Stream.CloseWrite()
}

func (s *limitedStream) Reset() error {
	s.finish(network.ErrReset)
	return s.Stream.Reset()
}

func (s *limitedStream) ResetWithError(code network.StreamErrorCode) error {
	s.finish(network.ErrReset)
	return s.Stream.ResetWithError(code)
}
