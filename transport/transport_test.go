package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// echoPull answers a digest request with one range naming the channel's
// length, so the test can tell the response belongs to its request.
func echoPull(_ context.Context, _ peer.ID, req *wire.PullRequest) (*wire.PullResponse, error) {
	ch := req.GetDigest().GetChannel()
	return &wire.PullResponse{Response: &wire.PullResponse_Digest{Digest: &wire.Digest{
		Channel: ch,
		Ranges:  []*wire.Range{{First: 0, Last: uint64(len(ch))}},
	}}}, nil
}

// helloFrom answers every hello with a fixed envelope.
func helloFrom(payload []byte) HelloHandler {
	return func(_ context.Context, _ peer.ID, _ *wire.Hello) (*wire.Hello, error) {
		return &wire.Hello{Alive: &wire.Envelope{Payload: payload, Signature: []byte("sig")}}, nil
	}
}

func TestRoundTrip(t *testing.T) {
	for _, kind := range netKinds {
		t.Run(kind, func(t *testing.T) {
			hs := newHosts(t, kind, 2)
			const n = 50
			handler, got := collect(n)
			rb, ra := newRecorder(), newRecorder()
			a := newTransport(t, hs[0], DefaultConfig(), WithTracer(ra))
			newTransport(t, hs[1], DefaultConfig(), WithTracer(rb),
				WithPushHandler(handler), WithPullHandler(echoPull), WithHelloHandler(helloFrom([]byte("b"))))

			// Push: n batches of growing size arrive in order, intact.
			for i := range n {
				if err := a.Send(hs[1].ID(), batchOf(i*100, byte(i))); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			for i := range n {
				r := recv(t, got, fmt.Sprintf("batch %d", i))
				if r.from != hs[0].ID() {
					t.Fatalf("batch %d from %s, want %s", i, r.from, hs[0].ID())
				}
				if want := batchOf(i*100, byte(i)); !proto.Equal(r.b, want) {
					t.Fatalf("batch %d differs from the one sent", i)
				}
			}

			// Pull and hello: the response belongs to the request.
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			resp, err := a.Pull(ctx, hs[1].ID(), &wire.PullRequest{Request: &wire.PullRequest_Digest{
				Digest: &wire.DigestRequest{Channel: "mychannel"}}})
			if err != nil {
				t.Fatalf("pull: %v", err)
			}
			if d := resp.GetDigest(); d.GetChannel() != "mychannel" || d.GetRanges()[0].GetLast() != 9 {
				t.Fatalf("pull response %v", resp)
			}
			hello, err := a.Hello(ctx, hs[1].ID(), &wire.Hello{Alive: &wire.Envelope{Payload: []byte("a")}})
			if err != nil {
				t.Fatalf("hello: %v", err)
			}
			if !bytes.Equal(hello.GetAlive().GetPayload(), []byte("b")) {
				t.Fatalf("hello response %v", hello)
			}

			// Both tracers saw every frame, and nothing went wrong.
			sent := ra.waitCounts(t, ProtocolPush, func(c Counts) bool { return c.FramesSent == n })
			rcvd := rb.Counts(ProtocolPush)
			if sent.FramesSent != n || rcvd.FramesReceived != n || sent.BytesSent != rcvd.BytesReceived {
				t.Fatalf("push counts: sender %+v, receiver %+v", sent, rcvd)
			}
			// The client counts both frames of each exchange; the server
			// has surely read the request by the time the client has the
			// response (its own sent count may lag).
			for _, pid := range []protocol.ID{ProtocolPull, ProtocolHello} {
				if c := ra.Counts(pid); c.FramesSent != 1 || c.FramesReceived != 1 {
					t.Fatalf("%s client counts %+v, want one frame each way", pid, c)
				}
				if c := rb.Counts(pid); c.FramesReceived != 1 {
					t.Fatalf("%s server counts %+v, want one request", pid, c)
				}
			}
			for _, c := range []Counts{sent, rcvd} {
				if c.Errors != ([numErrorKinds]uint64{}) || c.Drops != ([numDropReasons]uint64{}) {
					t.Fatalf("unexpected errors or drops: %+v", c)
				}
			}
		})
	}
}

// rawFrame is a length prefix followed by body, for writing by hand.
func rawFrame(length uint64, body []byte) []byte {
	return append(protowire.AppendVarint(nil, length), body...)
}

func TestBadFrameResetsOnlyItsStream(t *testing.T) {
	const maxFrame = 1024
	garbage := make([]byte, 300)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	cases := []struct {
		name  string
		bytes []byte
		kind  ErrorKind
	}{
		{"oversized length prefix", rawFrame(maxFrame+1, nil), ErrorOversized},
		{"huge length prefix", rawFrame(1<<62, nil), ErrorOversized},
		{"invalid protobuf", rawFrame(8, bytes.Repeat([]byte{0xff}, 8)), ErrorMalformed},
		{"truncated body", rawFrame(100, []byte{0x0a, 0x02}), ErrorMalformed},
		{"overlong prefix", bytes.Repeat([]byte{0x80}, 11), ErrorMalformed},
		{"random bytes", garbage, ErrorOversized},
		{"too many envelopes", rawFrame(2*17, hostileBatch(2*17)), ErrorTooManyItems},
	}
	for _, kind := range []string{"tcp", "quic"} {
		t.Run(kind, func(t *testing.T) {
			// x sends to r and c through its transport, and attacks r with
			// raw streams on the push protocol.
			hs := newHosts(t, kind, 3)
			x, r, c := hs[0], hs[1], hs[2]
			cfg := DefaultConfig()
			cfg.MaxFrameSize = maxFrame
			cfg.MaxBatchEnvelopes = 16
			rTrace, xTrace := newRecorder(), newRecorder()
			rHandler, rGot := collect(100)
			cHandler, cGot := collect(100)
			tx := newTransport(t, x, cfg, WithTracer(xTrace))
			newTransport(t, r, cfg, WithPushHandler(rHandler), WithTracer(rTrace))
			newTransport(t, c, cfg, WithPushHandler(cHandler))

			sendBoth := func(tag byte) {
				t.Helper()
				for _, to := range []host.Host{r, c} {
					if err := tx.Send(to.ID(), batchOf(10, tag)); err != nil {
						t.Fatalf("send to %s: %v", to.ID(), err)
					}
				}
				for _, got := range []<-chan received{rGot, cGot} {
					if b := recv(t, got, "batch"); b.b.GetEnvelopes()[0].GetPayload()[0] != tag {
						t.Fatalf("got batch %d, want %d", b.b.GetEnvelopes()[0].GetPayload()[0], tag)
					}
				}
			}
			sendBoth(0)
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					rTrace.drain()
					ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
					defer cancel()
					s, err := x.NewStream(ctx, r.ID(), ProtocolPush)
					if err != nil {
						t.Fatal(err)
					}
					defer s.Reset()
					// The receiver may reset the stream as soon as it has
					// the length prefix, failing the write or CloseWrite;
					// the read below checks the outcome.
					_, _ = s.Write(tc.bytes)
					_ = s.CloseWrite()
					// The receiver resets the raw stream: the read fails
					// instead of seeing a clean end of stream.
					if _, err := s.Read(make([]byte, 1)); err == nil || errors.Is(err, io.EOF) {
						t.Fatalf("raw stream read: %v, want a reset", err)
					}
					e := rTrace.waitEvent(t, "receiver stream error", func(e traceEvent) bool {
						return !e.drop && e.peer == x.ID() && e.proto == ProtocolPush
					})
					if e.kind != tc.kind {
						t.Fatalf("traced %s (%v), want %s", e.kind, e.err, tc.kind)
					}
					// The transport's own stream from x to r, and x's
					// traffic to c, carry on.
					sendBoth(byte(i + 1))
				})
			}
			if c := xTrace.Counts(ProtocolPush); c.Drops != ([numDropReasons]uint64{}) || c.Errors != ([numErrorKinds]uint64{}) {
				t.Fatalf("sender lost frames: %+v", c)
			}
		})
	}
}

func TestSlowReceiverFillsOnlyItsQueue(t *testing.T) {
	hs := newHosts(t, "tcp", 3)
	s, slow, fast := hs[0], hs[1], hs[2]
	cfg := DefaultConfig()
	cfg.SendQueueSize = 4
	cfg.WriteTimeout = time.Minute // the stuck write must outlast the test

	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	blocking := func(peer.ID, *wire.Batch) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	}
	fastHandler, fastGot := collect(1)
	rec := newRecorder()
	ts := newTransport(t, s, cfg, WithTracer(rec))
	slowT := newTransport(t, slow, cfg, WithPushHandler(blocking))
	newTransport(t, fast, cfg, WithPushHandler(fastHandler))
	// Unblock the handler before the transports close (cleanups run last
	// registered first), or Close would wait for it.
	t.Cleanup(func() { close(release) })
	_ = slowT

	// Fill the slow peer: its handler holds one batch, flow control stops
	// the writer, and the queue fills.
	big := batchOf(256<<10, 1)
	full := false
	for range 10000 {
		err := ts.Send(slow.ID(), big)
		if errors.Is(err, ErrQueueFull) {
			full = true
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		// Let the writer run so the queue fills only once it is stuck.
		select {
		case <-entered:
			entered <- struct{}{}
		default:
		}
	}
	if !full {
		t.Fatal("send to a stuck peer never reported ErrQueueFull")
	}
	recv(t, entered, "slow handler to be called")

	// Traffic to the other peer flows, one batch at a time.
	for i := range 200 {
		if err := ts.Send(fast.ID(), batchOf(1024, byte(i))); err != nil {
			t.Fatalf("send %d to the fast peer: %v", i, err)
		}
		if r := recv(t, fastGot, "fast batch"); r.b.GetEnvelopes()[0].GetPayload()[0] != byte(i) {
			t.Fatalf("fast peer got batch %d, want %d", r.b.GetEnvelopes()[0].GetPayload()[0], i)
		}
	}
	if n := rec.dropsOf(slow.ID(), DropQueueFull); n == 0 {
		t.Fatal("queue-full drop of the slow peer not traced")
	}
	if n := rec.dropsOf(fast.ID(), DropQueueFull); n != 0 {
		t.Fatalf("%d queue-full drops for the fast peer", n)
	}
}

func TestCloseWithStreamsInFlight(t *testing.T) {
	for _, kind := range []string{"tcp", "mocknet"} {
		t.Run(kind, func(t *testing.T) {
			hs := newHosts(t, kind, 2)
			a, b := hs[0], hs[1]
			cfg := DefaultConfig()
			cfg.SendQueueSize = 8

			release := make(chan struct{})
			pushEntered := make(chan struct{}, 1)
			pushHandler := func(peer.ID, *wire.Batch) {
				select {
				case pushEntered <- struct{}{}:
				default:
				}
				<-release
			}
			pullEntered := make(chan struct{})
			pullHandler := func(ctx context.Context, _ peer.ID, _ *wire.PullRequest) (*wire.PullResponse, error) {
				close(pullEntered)
				<-ctx.Done()
				return nil, ctx.Err()
			}
			ta, err := New(a, cfg)
			if err != nil {
				t.Fatal(err)
			}
			tb, err := New(b, cfg, WithPushHandler(pushHandler), WithPullHandler(pullHandler))
			if err != nil {
				t.Fatal(err)
			}

			for range cfg.SendQueueSize {
				if err := ta.Send(b.ID(), batchOf(64<<10, 1)); err != nil {
					t.Fatal(err)
				}
			}
			recv(t, pushEntered, "push handler to be called")
			pullErr := make(chan error, 1)
			go func() {
				_, err := ta.Pull(context.Background(), b.ID(), &wire.PullRequest{
					Request: &wire.PullRequest_Membership{Membership: &wire.MembershipRequest{}}})
				pullErr <- err
			}()
			recv(t, pullEntered, "pull handler to be called")

			// Closing the client ends its request and its writer.
			if err := ta.Close(); err != nil {
				t.Fatal(err)
			}
			if err := recv(t, pullErr, "pull to return"); !errors.Is(err, ErrClosed) {
				t.Fatalf("pull during Close: %v, want ErrClosed", err)
			}
			if err := ta.Send(b.ID(), batchOf(1, 1)); !errors.Is(err, ErrClosed) {
				t.Fatalf("send after Close: %v, want ErrClosed", err)
			}
			if _, err := ta.Hello(context.Background(), b.ID(), &wire.Hello{}); !errors.Is(err, ErrClosed) {
				t.Fatalf("hello after Close: %v, want ErrClosed", err)
			}

			// Closing the server waits for the push handler it is running.
			closed := make(chan error, 1)
			go func() { closed <- tb.Close() }()
			select {
			case <-closed:
				t.Fatal("Close returned while a push handler was running")
			default:
			}
			close(release)
			if err := recv(t, closed, "server Close"); err != nil {
				t.Fatal(err)
			}
			// Idempotent.
			if err := ta.Close(); err != nil {
				t.Fatal(err)
			}
			if err := tb.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestOversizedSendRefused(t *testing.T) {
	hs := newHosts(t, "mocknet", 2)
	cfg := DefaultConfig()
	cfg.MaxFrameSize = 1024
	rec := newRecorder()
	handler, got := collect(1)
	tr := newTransport(t, hs[0], cfg, WithTracer(rec))
	newTransport(t, hs[1], cfg, WithPushHandler(handler), WithPullHandler(echoPull))

	big := batchOf(1024, 1)
	if err := tr.Send(hs[1].ID(), big); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("send of %d bytes: %v, want ErrFrameTooLarge", proto.Size(big), err)
	}
	if n := rec.dropsOf(hs[1].ID(), DropTooLarge); n != 1 {
		t.Fatalf("%d too-large drops traced, want 1", n)
	}
	bigReq := &wire.PullRequest{Request: &wire.PullRequest_Digest{Digest: &wire.DigestRequest{
		Channel: string(bytes.Repeat([]byte("c"), 2000))}}}
	if _, err := tr.Pull(context.Background(), hs[1].ID(), bigReq); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized pull request: %v, want ErrFrameTooLarge", err)
	}
	// A batch at exactly the cap goes through.
	exact := batchOf(1024-(proto.Size(big)-1024), 2)
	if proto.Size(exact) != cfg.MaxFrameSize {
		t.Fatalf("test batch is %d bytes, want %d", proto.Size(exact), cfg.MaxFrameSize)
	}
	if err := tr.Send(hs[1].ID(), exact); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, got, "batch at the cap"); !proto.Equal(r.b, exact) {
		t.Fatal("batch at the cap differs")
	}
	if c := rec.waitCounts(t, ProtocolPush, func(c Counts) bool { return c.FramesSent == 1 }); c.FramesSent != 1 {
		t.Fatalf("frames sent %d, want 1", c.FramesSent)
	}
}

func TestSendErrors(t *testing.T) {
	hs := newHosts(t, "mocknet", 1)
	tr := newTransport(t, hs[0], DefaultConfig())
	if err := tr.Send(hs[0].ID(), batchOf(1, 1)); !errors.Is(err, ErrSelf) {
		t.Fatalf("send to self: %v, want ErrSelf", err)
	}
	if _, err := tr.Pull(context.Background(), hs[0].ID(), &wire.PullRequest{}); !errors.Is(err, ErrSelf) {
		t.Fatalf("pull from self: %v, want ErrSelf", err)
	}
}

func TestUnreachablePeerBacksOff(t *testing.T) {
	hs := newHosts(t, "mocknet", 1)
	cfg := DefaultConfig()
	cfg.ReopenBackoffMin = time.Hour // the second send surely falls in the backoff
	cfg.ReopenBackoffMax = time.Hour
	rec := newRecorder()
	tr := newTransport(t, hs[0], cfg, WithTracer(rec))
	nowhere := peer.ID("not a reachable peer")

	if err := tr.Send(nowhere, batchOf(1, 1)); err != nil {
		t.Fatalf("send is asynchronous, got %v", err)
	}
	e := rec.waitEvent(t, "write error drop", func(e traceEvent) bool { return e.drop })
	if e.reason != DropWriteError || e.peer != nowhere {
		t.Fatalf("first drop %+v, want a write error for %s", e, nowhere)
	}
	if err := tr.Send(nowhere, batchOf(1, 2)); err != nil {
		t.Fatal(err)
	}
	e = rec.waitEvent(t, "backoff drop", func(e traceEvent) bool { return e.drop })
	if e.reason != DropBackoff {
		t.Fatalf("second drop %s, want %s", e.reason, DropBackoff)
	}
	if c := rec.Counts(ProtocolPush); c.Errors[ErrorStream] != 1 {
		t.Fatalf("stream errors %d, want exactly 1 (no reopen during backoff)", c.Errors[ErrorStream])
	}
}

// writerOf returns p's current writer, or nil.
func writerOf(tr *Transport, p peer.ID) *peerWriter {
	tr.mu.RLock()
	defer tr.mu.RUnlock()
	return tr.writers[p]
}

func TestWritersAreReclaimed(t *testing.T) {
	cases := []struct {
		name    string
		idle    time.Duration
		reclaim func(t *testing.T, mnHosts []host.Host, tr *Transport)
	}{
		{"ClosePeer", 0, func(_ *testing.T, hs []host.Host, tr *Transport) { tr.ClosePeer(hs[1].ID()) }},
		{"disconnect", 0, func(t *testing.T, hs []host.Host, _ *Transport) {
			if err := hs[0].Network().ClosePeer(hs[1].ID()); err != nil {
				t.Fatal(err)
			}
		}},
		{"idle", time.Millisecond, func(*testing.T, []host.Host, *Transport) {}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHosts(t, "mocknet", 2)
			cfg := DefaultConfig()
			cfg.IdleTimeout = tc.idle
			handler, got := collect(2)
			tr := newTransport(t, hs[0], cfg)
			newTransport(t, hs[1], cfg, WithPushHandler(handler))

			if err := tr.Send(hs[1].ID(), batchOf(10, 1)); err != nil {
				t.Fatal(err)
			}
			recv(t, got, "first batch")
			w := writerOf(tr, hs[1].ID())
			if w == nil && tc.idle == 0 {
				t.Fatal("no writer after a send")
			}
			tc.reclaim(t, hs, tr)
			if w != nil {
				recv(t, w.done, "writer to exit")
			}
			if writerOf(tr, hs[1].ID()) != nil {
				t.Fatal("writer still registered")
			}
			// The next send starts afresh (reconnecting if needed).
			if err := tr.Send(hs[1].ID(), batchOf(10, 2)); err != nil {
				t.Fatal(err)
			}
			if r := recv(t, got, "second batch"); r.b.GetEnvelopes()[0].GetPayload()[0] != 2 {
				t.Fatal("wrong second batch")
			}
		})
	}
}

func TestRequestFailures(t *testing.T) {
	hs := newHosts(t, "mocknet", 2)
	cfg := DefaultConfig()
	cfg.MaxInboundRequests = 1
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	pull := func(ctx context.Context, _ peer.ID, req *wire.PullRequest) (*wire.PullResponse, error) {
		switch {
		case req.GetFetch() != nil:
			return nil, errors.New("no such blocks")
		case req.GetStateInfo() != nil:
			return nil, nil
		case req.GetMembership() != nil:
			entered <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return echoPull(ctx, "", req)
	}
	server := newRecorder()
	tr := newTransport(t, hs[0], cfg)
	newTransport(t, hs[1], cfg, WithPullHandler(pull), WithTracer(server))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	to := hs[1].ID()

	t.Run("handler error resets", func(t *testing.T) {
		_, err := tr.Pull(ctx, to, &wire.PullRequest{Request: &wire.PullRequest_Fetch{Fetch: &wire.FetchRequest{}}})
		if err == nil {
			t.Fatal("pull succeeded although the handler failed")
		}
		server.waitEvent(t, "handler error", func(e traceEvent) bool { return !e.drop && e.kind == ErrorHandler })
	})
	t.Run("nil response resets", func(t *testing.T) {
		_, err := tr.Pull(ctx, to, &wire.PullRequest{Request: &wire.PullRequest_StateInfo{StateInfo: &wire.StateInfoRequest{}}})
		if err == nil {
			t.Fatal("pull succeeded although the handler returned nothing")
		}
	})
	t.Run("protocol not served", func(t *testing.T) {
		if _, err := tr.Hello(ctx, to, &wire.Hello{}); err == nil {
			t.Fatal("hello succeeded on a peer without a hello handler")
		}
	})
	t.Run("caller cancel unblocks", func(t *testing.T) {
		cctx, ccancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() {
			_, err := tr.Pull(cctx, to, &wire.PullRequest{Request: &wire.PullRequest_Membership{Membership: &wire.MembershipRequest{}}})
			errc <- err
		}()
		recv(t, entered, "handler to be called")
		ccancel()
		if err := recv(t, errc, "cancelled pull"); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled pull: %v, want context.Canceled", err)
		}
		release <- struct{}{} // the server's handler runs on until it returns
	})
}

func TestMaxInboundRequests(t *testing.T) {
	hs := newHosts(t, "mocknet", 2)
	cfg := DefaultConfig()
	cfg.MaxInboundRequests = 1
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	pull := func(ctx context.Context, from peer.ID, req *wire.PullRequest) (*wire.PullResponse, error) {
		entered <- struct{}{}
		<-release
		return echoPull(ctx, from, req)
	}
	server := newRecorder()
	tr := newTransport(t, hs[0], cfg)
	newTransport(t, hs[1], cfg, WithPullHandler(pull), WithTracer(server))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req := &wire.PullRequest{Request: &wire.PullRequest_Digest{Digest: &wire.DigestRequest{Channel: "c"}}}

	errc := make(chan error, 1)
	go func() {
		_, err := tr.Pull(ctx, hs[1].ID(), req)
		errc <- err
	}()
	recv(t, entered, "handler to be called")
	if _, err := tr.Pull(ctx, hs[1].ID(), req); err == nil {
		t.Fatal("second concurrent request served over MaxInboundRequests=1")
	}
	server.waitEvent(t, "refused request", func(e traceEvent) bool { return !e.drop && e.kind == ErrorHandler })
	close(release)
	if err := recv(t, errc, "first pull"); err != nil {
		t.Fatalf("first pull: %v", err)
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	hs := newHosts(t, "mocknet", 1)
	if _, err := New(nil, DefaultConfig()); err == nil {
		t.Fatal("New accepted a nil host")
	}
	cfg := DefaultConfig()
	cfg.SendQueueSize = 0
	if _, err := New(hs[0], cfg); err == nil {
		t.Fatal("New accepted an invalid config")
	}
}

// TestSendQueueByteBudget: a peer's queue refuses a batch that would take it
// past SendQueueBytes, long before SendQueueSize batches, except when it is
// empty; a refused batch leaves the budget as it was.
func TestSendQueueByteBudget(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SendQueueSize = 1000
	cfg.SendQueueBytes = 1 << 20
	w := &peerWriter{t: &Transport{cfg: cfg}, queue: make(chan queuedBatch, cfg.SendQueueSize)}
	b := &wire.Batch{}
	if !w.enqueue(b, 4<<20) {
		t.Fatal("an empty queue refused a batch larger than the budget")
	}
	if w.enqueue(b, 1) {
		t.Fatal("a queue past its budget took another batch")
	}
	<-w.queue
	w.queued.Add(-4 << 20) // what the writer does when it takes a batch
	n := 0
	for w.enqueue(b, 256<<10) {
		n++
	}
	if n != 4 {
		t.Fatalf("took %d batches of 256 KiB within 1 MiB, want 4", n)
	}
	if got := w.queued.Load(); got != 1<<20 {
		t.Fatalf("queued %d bytes after a refusal, want %d", got, 1<<20)
	}
}

// TestCountCapsOnStreams: a request over a count cap never reaches the
// handler and resets its stream, a response over the client's caps fails the
// request, and a sender refuses what its own caps would refuse.
func TestCountCapsOnStreams(t *testing.T) {
	hs := newHosts(t, "mocknet", 2)
	small, big := DefaultConfig(), DefaultConfig()
	small.MaxPullRanges, small.MaxPullEnvelopes, small.MaxBatchEnvelopes = 3, 3, 3
	calls := make(chan *wire.PullRequest, 10)
	pull := func(_ context.Context, _ peer.ID, req *wire.PullRequest) (*wire.PullResponse, error) {
		calls <- req
		return &wire.PullResponse{Response: &wire.PullResponse_Membership{Membership: &wire.MembershipResponse{
			Alive: []*wire.Envelope{{}, {}, {}, {}}}}}, nil
	}
	strict, loose := newRecorder(), newRecorder()
	ts := newTransport(t, hs[0], small, WithPullHandler(pull), WithPushHandler(func(peer.ID, *wire.Batch) {}), WithTracer(strict))
	tl := newTransport(t, hs[1], big, WithPullHandler(pull), WithTracer(loose))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	fetch := &wire.PullRequest{Request: &wire.PullRequest_Fetch{Fetch: &wire.FetchRequest{
		Channel: "c", Ranges: []*wire.Range{{}, {}, {}, {}}}}}
	membership := &wire.PullRequest{Request: &wire.PullRequest_Membership{Membership: &wire.MembershipRequest{}}}

	t.Run("request over the server's caps", func(t *testing.T) {
		if _, err := tl.Pull(ctx, hs[0].ID(), fetch); err == nil {
			t.Fatal("pull succeeded")
		}
		e := strict.waitEvent(t, "refused request", func(e traceEvent) bool { return !e.drop && e.proto == ProtocolPull })
		if e.kind != ErrorTooManyItems || !errors.Is(e.err, ErrTooManyItems) {
			t.Fatalf("server traced %s (%v), want %s", e.kind, e.err, ErrorTooManyItems)
		}
		select {
		case req := <-calls:
			t.Fatalf("handler called with %v", req)
		default:
		}
	})
	t.Run("response over the client's caps", func(t *testing.T) {
		if _, err := ts.Pull(ctx, hs[1].ID(), membership); !errors.Is(err, ErrTooManyItems) {
			t.Fatalf("pull: %v, want ErrTooManyItems", err)
		}
		recv(t, calls, "the server's handler")
		strict.waitEvent(t, "refused response", func(e traceEvent) bool { return !e.drop && e.kind == ErrorTooManyItems })
	})
	t.Run("sender refuses over its own caps", func(t *testing.T) {
		if _, err := ts.Pull(ctx, hs[1].ID(), fetch); !errors.Is(err, ErrTooManyItems) {
			t.Fatalf("pull: %v, want ErrTooManyItems", err)
		}
		b := &wire.Batch{Envelopes: []*wire.Envelope{{}, {}, {}, {}}}
		if err := ts.Send(hs[1].ID(), b); !errors.Is(err, ErrTooManyItems) {
			t.Fatalf("send: %v, want ErrTooManyItems", err)
		}
		if got := strict.dropsOf(hs[1].ID(), DropTooLarge); got != 1 {
			t.Fatalf("%d drops counted too large, want 1", got)
		}
		select {
		case req := <-calls:
			t.Fatalf("handler called with %v", req)
		default:
		}
	})
}
