package shape

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
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
func seconds(e *Egress, n int) time.Duration {
	return time.Duration(float64(n) / e.BytesPerSecond() * float64(time.Second))
}

// A host's streams share its bucket: writing N bytes in all, over one stream
// or two at once, takes (N − burst) / rate of (virtual) time, the bucket
// starting full, and no write reaches the stream in chunks above the burst.
func TestEgressLimitsEveryStreamOfAHostTogether(t *testing.T) {
	for _, streams := range []int{1, 2} {
		synctest.Test(t, func(t *testing.T) {
			e := NewEgress(8) // 1 MB/s
			defer e.Stop()
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
			want := seconds(e, streams*each-EgressBurst)
			if took < want-time.Microsecond || took > want+time.Millisecond {
				t.Errorf("%d stream(s) × %d bytes at 8 Mbit/s took %v, want %v", streams, each, took, want)
			}
			for _, f := range fakes {
				if f.written != each || f.maxChunk > EgressBurst {
					t.Errorf("stream got %d bytes in chunks up to %d, want %d in chunks up to %d", f.written, f.maxChunk, each, EgressBurst)
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
		abort   func(s *limitedStream, e *Egress)
		want    error
	}{
		{"deadline", func(s *limitedStream) { _ = s.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)) }, nil, os.ErrDeadlineExceeded},
		{"reset", nil, func(s *limitedStream, _ *Egress) { _ = s.Reset() }, network.ErrReset},
		{"stop", nil, func(_ *limitedStream, e *Egress) { e.Stop() }, ErrEgressStopped},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := NewEgress(8)
				defer e.Stop()
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
					n, err = s.Write(make([]byte, 10*EgressBurst)) // 164 ms at 1 MB/s
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
				if n != f.written || n >= 10*EgressBurst {
					t.Errorf("Write = %d, stream got %d: want equal, and short", n, f.written)
				}
				// The tokens of the abandoned chunk went back: after the
				// time the sent part took, a burst is free again.
				time.Sleep(seconds(e, n) - time.Since(start) + time.Millisecond)
				if tok := bucket.TokensAt(time.Now()); tok < EgressBurst-1 {
					t.Errorf("%.0f tokens left, want the burst back (%d)", tok, EgressBurst)
				}
			})
		})
	}
}

// The wrapped host limits the streams it opens and the ones it accepts.
func TestEgressWrapsOpenedAndAcceptedStreams(t *testing.T) {
	a, b := connectedPair(t)
	e := NewEgress(100)
	defer e.Stop()
	wa, wb := e.Wrap(a), e.Wrap(b)
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
	if e2 := (*Egress)(nil); e2.Wrap(a) != a {
		t.Error("a nil egress wrapped the host")
	}
}
