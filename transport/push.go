package transport

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// Send queues b for peer to and returns at once; it never blocks on the
// network. Batches to one peer are written in order, each as one frame on
// the peer's long-lived push stream, opened on the first Send. Send returns
// ErrQueueFull when the peer's queue is full, ErrFrameTooLarge when b
// exceeds MaxFrameSize, ErrTooManyItems when it has more envelopes or
// control than the caps allow (a receiver with the same caps would refuse
// it), ErrSelf and ErrClosed; all but the last two are counted as drops
// (DropQueueFull, DropTooLarge). Delivery is best effort: a frame lost to a failed stream
// is counted (DropWriteError), not retried.
//
// b must not be modified after Send; the same batch may be passed to Send
// for several peers.
func (t *Transport) Send(to peer.ID, b *wire.Batch) error {
	if to == t.host.ID() {
		return ErrSelf
	}
	if err := batchWithinCaps(b, t.caps); err != nil {
		t.trace.dropped(to, ProtocolPush, DropTooLarge, 1)
		return fmt.Errorf("send to %s: %w", to, err)
	}
	size := proto.Size(b)
	if size > t.cfg.MaxFrameSize {
		t.trace.dropped(to, ProtocolPush, DropTooLarge, 1)
		return fmt.Errorf("send to %s: %w: body of %d bytes, max %d", to, ErrFrameTooLarge, size, t.cfg.MaxFrameSize)
	}

	t.mu.RLock()
	if t.closed {
		t.mu.RUnlock()
		return ErrClosed
	}
	w, ok := t.writers[to]
	if ok {
		ok = w.enqueue(b, size)
		t.mu.RUnlock()
	} else {
		t.mu.RUnlock()
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return ErrClosed
		}
		w = t.writerLocked(to)
		ok = w.enqueue(b, size)
		t.mu.Unlock()
	}
	if !ok {
		t.trace.dropped(to, ProtocolPush, DropQueueFull, 1)
		return fmt.Errorf("send to %s: %w", to, ErrQueueFull)
	}
	return nil
}

// ClosePeer discards p's queued batches (counted as DropClosed), resets its
// push stream and waits for its writer to exit. The next Send to p starts
// afresh. Inbound streams from p are not affected: see ResetInbound.
func (t *Transport) ClosePeer(p peer.ID) {
	if w := t.removeWriter(p); w != nil {
		<-w.done
	}
}

// removeWriter unlinks p's writer and tells it to stop, without waiting.
func (t *Transport) removeWriter(p peer.ID) *peerWriter {
	t.mu.Lock()
	w := t.writers[p]
	delete(t.writers, p)
	t.mu.Unlock()
	if w != nil {
		w.cancel()
	}
	return w
}

// writerLocked returns p's writer, starting one if needed. t.mu is held
// for writing and the transport is open.
func (t *Transport) writerLocked(p peer.ID) *peerWriter {
	if w := t.writers[p]; w != nil {
		return w
	}
	ctx, cancel := context.WithCancel(t.ctx)
	w := &peerWriter{
		t:      t,
		peer:   p,
		queue:  make(chan queuedBatch, t.cfg.SendQueueSize),
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	t.writers[p] = w
	t.wg.Add(1)
	go w.run()
	return w
}

// retireIdle unlinks w if it is still p's writer and has nothing queued. A
// Send enqueues under t.mu, so none can slip in after this check.
func (t *Transport) retireIdle(w *peerWriter) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.writers[w.peer] != w || len(w.queue) > 0 {
		return false
	}
	delete(t.writers, w.peer)
	return true
}

// peerWriter owns one peer's send queue and push stream. Only run and its
// helpers touch the fields below done.
type peerWriter struct {
	t      *Transport
	peer   peer.ID
	queue  chan queuedBatch
	queued atomic.Int64    // bytes in queue, at most about SendQueueBytes
	ctx    context.Context // cancelled by ClosePeer, disconnect and Close
	cancel context.CancelFunc
	done   chan struct{}

	stream     network.Stream
	stopReset  func() bool // unregisters the stream's reset-on-cancel
	buf        []byte      // the frame being written, reused
	failures   int         // consecutive open or write failures
	retryAt    time.Time   // no stream is opened before this
	lastActive time.Time
}

// queuedBatch is a batch waiting in a peer's queue, with its size.
type queuedBatch struct {
	b    *wire.Batch
	size int
}

// enqueue queues b (of size bytes) unless the queue is full by count or by
// bytes. An empty queue takes any batch; concurrent Sends may overshoot the
// byte budget by one batch each.
func (w *peerWriter) enqueue(b *wire.Batch, size int) bool {
	n := int64(size)
	if total := w.queued.Add(n); total > int64(w.t.cfg.SendQueueBytes) && total != n {
		w.queued.Add(-n)
		return false
	}
	select {
	case w.queue <- queuedBatch{b, size}:
		return true
	default:
		w.queued.Add(-n)
		return false
	}
}

func (w *peerWriter) run() {
	defer w.t.wg.Done()
	defer close(w.done)
	defer w.cancel()

	// The idle timer is re-armed lazily from lastActive rather than reset
	// per frame.
	var (
		d     = w.t.cfg.IdleTimeout
		timer *time.Timer
		idle  <-chan time.Time
	)
	if d > 0 {
		timer = time.NewTimer(d)
		defer timer.Stop()
		idle = timer.C
	}
	w.lastActive = time.Now()
	for {
		select {
		case <-w.ctx.Done():
			w.shutdown()
			return
		case q := <-w.queue:
			w.queued.Add(-int64(q.size))
			w.send(q.b)
			w.lastActive = time.Now()
		case <-idle:
			if left := d - time.Since(w.lastActive); left > 0 {
				timer.Reset(left)
				continue
			}
			if w.t.retireIdle(w) {
				w.closeStream()
				return
			}
			timer.Reset(d)
		}
	}
}

// shutdown resets the stream and counts what is left in the queue. No Send
// can enqueue any more: the writer was unlinked (or the transport closed)
// before its context was cancelled.
func (w *peerWriter) shutdown() {
	w.resetStream()
	dropped := 0
	for {
		select {
		case <-w.queue:
			dropped++
		default:
			w.t.trace.dropped(w.peer, ProtocolPush, DropClosed, dropped)
			return
		}
	}
}

// send writes b as one frame, opening the stream if needed. A stream that
// served earlier frames may have died since (remote reset, connection
// replaced); a write failing on it is retried once on a new stream. Any
// other failure drops the frame and backs off.
func (w *peerWriter) send(b *wire.Batch) {
	if time.Now().Before(w.retryAt) {
		w.t.trace.dropped(w.peer, ProtocolPush, DropBackoff, 1)
		return
	}
	buf, err := AppendFrame(w.buf[:0], b, w.t.cfg.MaxFrameSize)
	if err != nil {
		w.t.trace.dropped(w.peer, ProtocolPush, DropTooLarge, 1)
		w.t.log.Warn("push frame not encoded", "peer", w.peer, "err", err)
		return
	}
	w.buf = buf

	reused := w.stream != nil
	if !reused {
		err = w.open()
	}
	if err == nil {
		err = w.write(buf)
		if err != nil && reused && w.ctx.Err() == nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			w.resetStream()
			if err = w.open(); err == nil {
				err = w.write(buf)
			}
		}
	}
	if err != nil {
		w.resetStream()
		w.fail(err)
		return
	}
	w.failures = 0
	w.t.trace.frameSent(w.peer, ProtocolPush, len(buf))
}

func (w *peerWriter) open() error {
	ctx, cancel := context.WithTimeout(w.ctx, w.t.cfg.OpenTimeout)
	defer cancel()
	s, err := w.t.host.NewStream(ctx, w.peer, ProtocolPush)
	if err != nil {
		return fmt.Errorf("open push stream: %w", err)
	}
	if err := s.Scope().SetService(ServiceName); err != nil {
		_ = s.ResetWithError(network.StreamResourceLimitExceeded)
		return fmt.Errorf("open push stream: %w", err)
	}
	w.stream = s
	w.stopReset = context.AfterFunc(w.ctx, func() { _ = s.Reset() })
	return nil
}

func (w *peerWriter) write(frame []byte) error {
	if err := w.stream.SetWriteDeadline(time.Now().Add(w.t.cfg.WriteTimeout)); err != nil {
		return fmt.Errorf("write push frame: %w", err)
	}
	if _, err := w.stream.Write(frame); err != nil {
		return fmt.Errorf("write push frame: %w", err)
	}
	return nil
}

// fail counts the lost frame and schedules the next open attempt.
func (w *peerWriter) fail(err error) {
	if w.ctx.Err() != nil {
		w.t.trace.dropped(w.peer, ProtocolPush, DropClosed, 1)
		return
	}
	w.failures++
	d := backoff(w.failures, w.t.cfg.ReopenBackoffMin, w.t.cfg.ReopenBackoffMax)
	w.retryAt = time.Now().Add(d)
	w.t.trace.dropped(w.peer, ProtocolPush, DropWriteError, 1)
	w.t.trace.streamError(w.peer, ProtocolPush, ErrorStream, err)
	w.t.log.Debug("push stream failed", "peer", w.peer, "err", err, "failures", w.failures, "backoff", d)
}

func (w *peerWriter) resetStream() {
	if w.stream == nil {
		return
	}
	if w.stopReset() {
		_ = w.stream.Reset()
	}
	w.stream = nil
}

// closeStream ends an idle stream gracefully: the receiver reads every
// frame, then end of stream.
func (w *peerWriter) closeStream() {
	if w.stream == nil {
		return
	}
	if w.stopReset() {
		_ = w.stream.Close()
	}
	w.stream = nil
}

// backoff returns the delay after the n-th consecutive failure: min doubled
// per failure up to max, with equal jitter so that peers failing together do
// not retry together.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := hi
	if n-1 < 63 && lo<<(n-1) > 0 && lo<<(n-1) < hi {
		d = lo << (n - 1)
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// handlePush reads frames from one inbound push stream of an admitted peer
// until it ends and hands each batch to the PushHandler, synchronously: a
// slow handler backpressures only this peer. A bad frame resets only this
// stream.
func (t *Transport) handlePush(s network.Stream) {
	if !t.enter() {
		_ = s.Reset()
		return
	}
	defer t.wg.Done()
	from := s.Conn().RemotePeer()
	if !t.openInbound(s, from, ProtocolPush) {
		return
	}
	end := func(err error) { t.endInbound(s, from, ProtocolPush, err) }
	if err := s.Scope().SetService(ServiceName); err != nil {
		end(err)
		return
	}
	stop := context.AfterFunc(t.ctx, func() { _ = s.Reset() })
	defer stop()

	fr := newScopedFrameReader(s, t.cfg.MaxFrameSize, s.Scope())
	defer fr.Release()
	budget := t.budget(from)
	var spare []byte // the last body, given back by the handler
	for {
		// The batch aliases the body and the handler may keep it, so the
		// body must be its own, never a reader buffer: a fresh one, or the
		// previous one when the handler gave it back.
		body, err := fr.nextOwnedInto(spare)
		spare = nil
		if err != nil {
			end(err)
			return
		}
		b, err := decodeBatch(body, t.caps)
		if err != nil {
			end(err)
			return
		}
		size := protowire.SizeVarint(uint64(len(body))) + len(body)
		t.trace.frameReceived(from, ProtocolPush, size)
		if !t.push(from, b) {
			spare = body
		}
		if err := t.spend(budget, size); err != nil {
			end(err)
			return
		}
	}
}
