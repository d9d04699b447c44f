package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/time/rate"
)

// Transport sends batches to peers over long-lived push streams and runs the
// pull and hello request/response protocols on a libp2p host. It is safe for
// concurrent use. The host stays the caller's: Close does not close it.
type Transport struct {
	host    host.Host
	cfg     Config
	log     *slog.Logger
	trace   tracers
	push    LendingPushHandler
	pull    PullHandler
	hello   HelloHandler
	admit   Admission
	caps    itemCaps
	served  []protocol.ID
	notifee network.Notifiee

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	// wg counts the writer goroutines and the handler calls in flight, so
	// Close returns only when no transport code runs any more.
	wg sync.WaitGroup
	// requests is a semaphore of MaxInboundRequests tokens.
	requests chan struct{}

	closeOnce sync.Once

	mu      sync.RWMutex
	closed  bool
	writers map[peer.ID]*peerWriter

	// inMu guards the inbound stream bookkeeping.
	inMu sync.Mutex
	// inbound holds the open inbound streams per peer, with their
	// protocols, for ResetInbound.
	inbound map[peer.ID]map[network.Stream]protocol.ID
	// hellos counts the inbound hello streams per peer being served.
	hellos map[peer.ID]int
	// budgets are the inbound byte buckets per peer (budget.go).
	budgets map[peer.ID]*rate.Limiter
}

// New starts a transport on h: it registers a stream handler for each
// protocol that has a handler option and watches disconnections to reclaim
// per-peer writers.
func New(h host.Host, cfg Config, opts ...Option) (*Transport, error) {
	if h == nil {
		return nil, errors.New("transport: nil host")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		host:     h,
		cfg:      cfg,
		log:      o.logger.With("component", "transport"),
		trace:    o.tracers,
		push:     o.push,
		pull:     o.pull,
		hello:    o.hello,
		admit:    o.admit,
		caps:     cfg.itemCaps(),
		inbound:  make(map[peer.ID]map[network.Stream]protocol.ID),
		hellos:   make(map[peer.ID]int),
		budgets:  make(map[peer.ID]*rate.Limiter),
		ctx:      ctx,
		cancel:   cancel,
		requests: make(chan struct{}, cfg.MaxInboundRequests),
		writers:  make(map[peer.ID]*peerWriter),
	}
	if t.push != nil {
		t.serveProtocol(ProtocolPush, t.handlePush)
	}
	if t.pull != nil {
		t.serveProtocol(ProtocolPull, t.handlePull)
	}
	if t.hello != nil {
		t.serveProtocol(ProtocolHello, t.handleHello)
	}
	t.notifee = &network.NotifyBundle{DisconnectedF: t.disconnected}
	h.Network().Notify(t.notifee)
	return t, nil
}

func (t *Transport) serveProtocol(pid protocol.ID, handler network.StreamHandler) {
	t.host.SetStreamHandler(pid, handler)
	t.served = append(t.served, pid)
}

// Close stops the transport: it removes the stream handlers, resets every
// stream, discards queued batches (counted as DropClosed) and waits for its
// goroutines and for the handler calls in flight. A PushHandler that never
// returns therefore blocks Close. Close is idempotent and never fails; after
// it, every method returns ErrClosed.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.closed = true
		t.writers = nil
		t.mu.Unlock()

		for _, pid := range t.served {
			t.host.RemoveStreamHandler(pid)
		}
		t.host.Network().StopNotify(t.notifee)
		t.cancel() // unblocks writers, readers and requests: each resets its stream
		t.wg.Wait()
	})
	return nil
}

// enter registers a handler call with Close; false means closed.
func (t *Transport) enter() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

// disconnected reclaims the writer of a peer we no longer have any
// connection to. It runs on the swarm's goroutine, so it does not wait.
func (t *Transport) disconnected(n network.Network, c network.Conn) {
	p := c.RemotePeer()
	if n.Connectedness(p) == network.Connected {
		return
	}
	t.removeWriter(p)
}

// endStream finishes a stream on which a read failed: a clean end of
// stream is closed, anything else is reset and traced. While closing, the
// resets are the transport's own and are not traced.
func (t *Transport) endStream(s network.Stream, from peer.ID, pid protocol.ID, err error) {
	if errors.Is(err, io.EOF) {
		_ = s.Close()
		return
	}
	kind, code := classify(err)
	_ = s.ResetWithError(code)
	if t.ctx.Err() != nil {
		return
	}
	t.trace.streamError(from, pid, kind, err)
	t.log.Debug("stream reset", "peer", from, "protocol", pid, "kind", kind, "err", err)
}

// endInbound is endStream for a tracked inbound stream: it unregisters s,
// and words the failure of a stream ResetInbound reset as ErrUnadmitted.
func (t *Transport) endInbound(s network.Stream, from peer.ID, pid protocol.ID, err error) {
	if !t.untrack(s, from) {
		err = fmt.Errorf("%w: %w", ErrUnadmitted, err)
	}
	t.endStream(s, from, pid, err)
}

// classify maps a read error to the kind traced and the reset code sent.
func classify(err error) (ErrorKind, network.StreamErrorCode) {
	switch {
	case errors.Is(err, ErrUnadmitted):
		return ErrorUnadmitted, network.StreamGated
	case errors.Is(err, ErrTooManyItems):
		return ErrorTooManyItems, network.StreamProtocolViolation
	case errors.Is(err, ErrFrameTooLarge):
		return ErrorOversized, network.StreamProtocolViolation
	case errors.Is(err, ErrMalformedFrame):
		return ErrorMalformed, network.StreamProtocolViolation
	case errors.Is(err, network.ErrResourceLimitExceeded):
		return ErrorStream, network.StreamResourceLimitExceeded
	}
	return ErrorStream, network.StreamNoError
}
