package bench

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// fakeStream takes every write at once and records it; only the methods
// below may be called.
type fakeStream struct {
	network.Stream

	mu       sync.Mutex
	written  int
	maxChunk int
	reset    bool
}

func (f *fakeStream) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.written += len(p)
	f.maxChunk = max(f.maxChunk, len(p))
	return len(p), nil
}

func (f *fakeStream) SetWriteDeadline(time.Time) error { return nil }

func (f *fakeStream) Reset() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reset = true
	return nil
}

// seconds is the time n bytes take at e's rate.
func seconds(e *egress, n int) time.Duration {
	return time.Duration(float64(n) / e.bytesPerSecond() * float64(time.Second))
}

// A host's streams share its bucket: writing N bytes in all, over one stream
// or two at once, takes (N − burst) / rate of (virtual) time, the bucket
// starting full, and no write reaches the stream in chunks above the burst.
func TestEgressLimitsEveryStreamOfAHostTogether(t *testing.T) {
	for _, streams := range []int{1, 2} {
		synctest.Test(t, func(t *testing.T) {
			e := newEgress(8) // 1 MB/s
			defer e.stop()
			bucket := e.newBucket()
			const each = 1_000_000
			fakes := make([]*fakeStream, streams)
			start := time.Now()
			var wg sync.WaitGroup
			for i := range fakes {
				fakes[i] = &fakeStream{}
				s := newLimitedStream(fakes[i], e, bucket)
				wg.Go(func() {
					if n, err := s.Write(make([]byte, each)); n != each || err != nil {
						t.Errorf("Write = %d, %v; want %d, nil", n, err, each)
					}
				})
			}
			wg.Wait()
			took := time.Since(start)
			want := seconds(e, streams*each-egressBurst)
			if took < want-time.Microsecond || took > want+time.Millisecond {
				t.Errorf("%d stream(s) × %d bytes at 8 Mbit/s took %v, want %v", streams, each, took, want)
			}
			for _, f := range fakes {
				if f.written != each || f.maxChunk > egressBurst {
					t.Errorf("stream got %d bytes in chunks up to %d, want %d in chunks up to %d", f.written, f.maxChunk, each, egressBurst)
				}
			}
		})
	}
}

// A Write waiting for tokens gives up when its write deadline passes, when
// the stream is reset, and when the limiter stops; it never waits out the
// backlog.
func TestEgressWaitGivesUp(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(s *limitedStream) // before the Write
		abort   func(s *limitedStream, e *egress)
		want    error
	}{
		{"deadline", func(s *limitedStream) { _ = s.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)) }, nil, os.ErrDeadlineExceeded},
		{"reset", nil, func(s *limitedStream, _ *egress) { _ = s.Reset() }, network.ErrReset},
		{"stop", nil, func(_ *limitedStream, e *egress) { e.stop() }, errEgressStopped},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEgress(8)
				defer e.stop()
				bucket := e.newBucket()
				f := &fakeStream{}
				s := newLimitedStream(f, e, bucket)
				if c.prepare != nil {
					c.prepare(s)
				}
				start := time.Now()
				var n int
				var err error
				done := make(chan struct{})
				go func() {
					defer close(done)
					n, err = s.Write(make([]byte, 10*egressBurst)) // 164 ms at 1 MB/s
				}()
				if c.abort != nil {
					time.Sleep(20 * time.Millisecond)
					synctest.Wait()
					c.abort(s, e)
				}
				<-done
				if !errors.Is(err, c.want) {
					t.Errorf("Write error %v, want %v", err, c.want)
				}
				if took := time.Since(start); took > 50*time.Millisecond {
					t.Errorf("Write gave up after %v, want ≤ 50ms", took)
				}
				if n != f.written || n >= 10*egressBurst {
					t.Errorf("Write = %d, stream got %d: want equal, and short", n, f.written)
				}
				// The tokens of the abandoned chunk went back: after the
				// time the sent part took, a burst is free again.
				time.Sleep(seconds(e, n) - time.Since(start) + time.Millisecond)
				if tok := bucket.TokensAt(time.Now()); tok < egressBurst-1 {
					t.Errorf("%.0f tokens left, want the burst back (%d)", tok, egressBurst)
				}
			})
		})
	}
}

// The wrapped host limits the streams it opens and the ones it accepts.
func TestEgressWrapsOpenedAndAcceptedStreams(t *testing.T) {
	mn := mocknet.New()
	defer func() { _ = mn.Close() }()
	a, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	b, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := mn.ConnectPeers(a.ID(), b.ID()); err != nil {
		t.Fatal(err)
	}
	e := newEgress(100)
	defer e.stop()
	wa, wb := e.wrap(a), e.wrap(b)
	accepted := make(chan network.Stream, 2)
	handler := func(s network.Stream) { accepted <- s } // the test resets it
	wb.SetStreamHandler("/exact/1", handler)
	wb.SetStreamHandlerMatch("/match", func(p protocol.ID) bool { return strings.HasPrefix(string(p), "/match/") }, handler)
	for _, proto := range []string{"/exact/1", "/match/2"} {
		s, err := wa.NewStream(context.Background(), b.ID(), protocol.ID(proto))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.(*limitedStream); !ok {
			t.Errorf("%s: NewStream gave a %T, want *limitedStream", proto, s)
		}
		if _, err := s.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		in := <-accepted
		if _, ok := in.(*limitedStream); !ok {
			t.Errorf("%s: the handler got a %T, want *limitedStream", proto, in)
		}
		_ = in.Reset()
		_ = s.Reset()
	}
	if e2 := (*egress)(nil); e2.wrap(a) != a {
		t.Error("a nil egress wrapped the host")
	}
}

// tinyNetworkRun runs one system on the tiny topology with the network
// options of mod, and checks what every system must do on any network:
// every block to every member within 10 s, and no leak but GossipSub's (both
// rows) to its curious subscribers.
func tinyNetworkRun(t *testing.T, system string, mod func(*Options)) (*Report, Result) {
	t.Helper()
	o := tinyOptions(system)
	mod(&o)
	rep, err := Run(context.Background(), o, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	if r.Error != "" {
		t.Fatalf("%s failed: %s", system, r.Error)
	}
	if r.CovFinal != 1 {
		t.Errorf("%s: cov_final %v, want 1", system, r.CovFinal)
	}
	if strings.HasPrefix(system, SystemGossipSub) {
		if r.Leaks == 0 {
			t.Errorf("%s: no leak: the curious subscribers received nothing", system)
		}
	} else if r.Leaks != 0 {
		t.Errorf("%s: %d leaks, want 0", system, r.Leaks)
	}
	return rep, r
}

func TestEverySystemOverLoopbackTCP(t *testing.T) {
	for _, system := range AllSystems() {
		t.Run(system, func(t *testing.T) {
			rep, r := tinyNetworkRun(t, system, func(o *Options) { o.Network = NetworkTCP })
			if rep.Workload.Network != NetworkTCP || rep.Topology.Latency != tcpLatency || !strings.Contains(r.Config, "loopback TCP") {
				t.Errorf("the report does not say TCP: workload %q, latency %q, config %q", rep.Workload.Network, rep.Topology.Latency, r.Config)
			}
			for _, f := range r.FloorMs {
				if f != 0 {
					t.Errorf("floors %v, want 0 over TCP", r.FloorMs)
				}
			}
			md := rep.Markdown()
			if !strings.Contains(md, "Network: real loopback TCP") || !strings.Contains(md, "| n/a |") {
				t.Errorf("the markdown does not say TCP, or shows a ×floor:\n%s", md)
			}
			b, err := json.Marshal(rep)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), `"network":"tcp"`) {
				t.Errorf("JSON lacks the network")
			}
		})
	}
}

func TestEverySystemUnderAnEgressLimit(t *testing.T) {
	for _, system := range AllSystems() {
		t.Run(system, func(t *testing.T) {
			rep, r := tinyNetworkRun(t, system, func(o *Options) { o.EgressMbps = 100 })
			if rep.Workload.EgressMbps != 100 || !strings.Contains(r.Config, "egress limit 100 Mbit/s per host") ||
				!strings.Contains(rep.Markdown(), "egress limit 100 Mbit/s per host") {
				t.Errorf("the report does not show the limit: workload %v, config %q", rep.Workload.EgressMbps, r.Config)
			}
		})
	}
}

// The limit binds: direct's publisher (peer 0 publishes both channels)
// writes 5 + 2 copies of each of 5 blocks of 4 KiB, 140 KiB, through one
// bucket of 0.5 Mbit/s, so the last one cannot arrive before about 2 s after
// the first publish. A lower bound only: a slow machine cannot break it.
func TestEgressLimitSlowsTheDirectPublisher(t *testing.T) {
	_, r := tinyNetworkRun(t, SystemDirect, func(o *Options) { o.EgressMbps = 0.5 })
	e := newEgress(0.5)
	defer e.stop()
	if floor := seconds(e, 7*5*(4<<10)-egressBurst); r.PublishSeconds < floor.Seconds() {
		t.Errorf("publish window %.2f s, want ≥ %.2f s at 0.5 Mbit/s", r.PublishSeconds, floor.Seconds())
	}
}

func TestOptionsCheckTheNetwork(t *testing.T) {
	for _, o := range []Options{
		{Scale: ScaleS, Network: "udp"},
		{Scale: ScaleL, Network: NetworkTCP},
		{Scale: ScaleS, EgressMbps: -1},
	} {
		if _, err := o.withDefaults(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	o, err := (Options{Scale: ScaleQuick}).withDefaults()
	if err != nil || o.Network != NetworkMock {
		t.Errorf("default network %q, %v; want %q", o.Network, err, NetworkMock)
	}
}
