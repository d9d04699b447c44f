package shape

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// pipeStream is the reading end of an in-memory stream: what the test
// writes to w, the stream reads. Only the methods below may be called.
type pipeStream struct {
	network.Stream
	r *io.PipeReader
	w *io.PipeWriter
}

func newPipeStream() *pipeStream {
	r, w := io.Pipe()
	return &pipeStream{r: r, w: w}
}

func (p *pipeStream) Read(b []byte) (int, error) { return p.r.Read(b) }

func (p *pipeStream) Write(b []byte) (int, error) { return p.w.Write(b) }

func (p *pipeStream) Close() error {
	_ = p.w.Close()
	return p.r.CloseWithError(errReadClosed)
}

func (p *pipeStream) CloseRead() error { return p.r.CloseWithError(errReadClosed) }

func (p *pipeStream) Reset() error {
	_ = p.w.CloseWithError(network.ErrReset)
	return p.r.CloseWithError(network.ErrReset)
}

func (p *pipeStream) SetWriteDeadline(time.Time) error { return nil }

// delayed wraps a new pipe stream in latency, with a pump group the test
// waits for at its end.
func delayed(t *testing.T, latency time.Duration, limit int) (*delayedStream, *pipeStream) {
	p := newPipeStream()
	g := &pumpGroup{}
	t.Cleanup(g.closeAndWait)
	return newDelayedStream(p, latency, limit, g), p
}

// receipt is when a Read returned bytes.
type receipt struct {
	at   time.Time
	data []byte
}

// readAll reads s until an error, recording when each Read returned what.
func readAll(s io.Reader, size int) ([]receipt, error) {
	var out []receipt
	buf := make([]byte, size)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			out = append(out, receipt{time.Now(), bytes.Clone(buf[:n])})
		}
		if err != nil {
			return out, err
		}
	}
}

// Every byte becomes readable exactly one latency after it arrived, in the
// order it arrived, and the end of the stream too; bytes that arrive while
// earlier ones wait are not held up beyond their own latency.
func TestDelayedStreamReleasesEachByteOneLatencyAfterItArrived(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const latency = 25 * time.Millisecond
		s, p := delayed(t, latency, DelayBuffer)
		start := time.Now()
		sentAt := map[byte]time.Duration{}
		go func() {
			for i := range byte(10) {
				sentAt[i] = time.Since(start)
				_, _ = p.w.Write(bytes.Repeat([]byte{i}, 100+int(i)))
				time.Sleep(7 * time.Millisecond) // less than the latency: several in flight
			}
			sentAt[0xff] = time.Since(start)
			_ = p.w.Close()
		}()
		got, err := readAll(s, 64)
		if !errors.Is(err, io.EOF) {
			t.Fatalf("read error %v, want EOF", err)
		}
		if end := time.Since(start); end != sentAt[0xff]+latency {
			t.Errorf("EOF at %v, want %v (the close one latency later)", end, sentAt[0xff]+latency)
		}
		var all []byte
		for _, r := range got {
			for _, b := range r.data {
				if at := r.at.Sub(start); at != sentAt[b]+latency {
					t.Fatalf("byte of write %d read at %v, want %v", b, at, sentAt[b]+latency)
				}
			}
			all = append(all, r.data...)
		}
		var want []byte
		for i := range byte(10) {
			want = append(want, bytes.Repeat([]byte{i}, 100+int(i))...)
		}
		if !bytes.Equal(all, want) {
			t.Errorf("read %d bytes, not the %d written in order", len(all), len(want))
		}
	})
}

// A 128 KiB block written in 4 KiB writes arrives whole one latency after
// it was written, not one latency per write or per read: the delay is a
// pipe, and the writer never waits for it.
func TestDelayedStreamThroughputIsNotLatencyBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const latency = 25 * time.Millisecond
		s, p := delayed(t, latency, DelayBuffer)
		block := bytes.Repeat([]byte("0123456789abcdef"), 8<<10) // 128 KiB
		start := time.Now()
		var writerDone time.Duration
		go func() {
			for b := block; len(b) > 0; b = b[4<<10:] {
				_, _ = p.w.Write(b[:4<<10])
			}
			writerDone = time.Since(start)
			_ = p.w.Close()
		}()
		got, err := readAll(s, 8<<10)
		if !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		if writerDone != 0 {
			t.Errorf("the writer took %v, want no wait at all", writerDone)
		}
		var all []byte
		for _, r := range got {
			all = append(all, r.data...)
			if at := r.at.Sub(start); at != latency {
				t.Errorf("%d bytes read at %v, want all at %v", len(r.data), at, latency)
			}
		}
		if !bytes.Equal(all, block) {
			t.Errorf("read %d bytes, want the block's %d in order", len(all), len(block))
		}
	})
}

// A ping and its pong over two delayed streams (one per direction, as the
// two hosts of a link have) take exactly two latencies: each direction is
// delayed once.
func TestDelayedRoundTripIsTwoLatencies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const latency = 10 * time.Millisecond
		atB, toB := delayed(t, latency, DelayBuffer) // B reads what A writes
		atA, toA := delayed(t, latency, DelayBuffer) // A reads what B writes
		start := time.Now()
		go func() {
			buf := make([]byte, 4)
			if _, err := io.ReadFull(atB, buf); err != nil {
				t.Error(err)
				return
			}
			if at := time.Since(start); at != latency {
				t.Errorf("B got the ping at %v, want %v", at, latency)
			}
			_, _ = toA.w.Write([]byte("pong"))
		}()
		_, _ = toB.w.Write([]byte("ping"))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(atA, buf); err != nil || string(buf) != "pong" {
			t.Fatalf("A read %q, %v", buf, err)
		}
		if rtt := time.Since(start); rtt != 2*latency {
			t.Errorf("round trip %v, want %v", rtt, 2*latency)
		}
		_ = atA.Close()
		_ = atB.Close()
	})
}

// A reader that does not read holds up at most limit bytes: the pump stops
// reading, so the writer blocks, and nothing is lost once reading resumes.
func TestDelayedStreamBuffersAtMostItsLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 64 << 10
		s, p := delayed(t, time.Millisecond, limit)
		data := bytes.Repeat([]byte("abcdefgh"), 32<<10) // 256 KiB
		written := make(chan struct{})
		go func() {
			_, _ = p.w.Write(data)
			_ = p.w.Close()
			close(written)
		}()
		one := make([]byte, 1)
		if _, err := s.Read(one); err != nil { // starts the pump
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		s.mu.Lock()
		buffered := s.buffered
		s.mu.Unlock()
		if buffered > limit {
			t.Errorf("%d bytes buffered, want at most %d", buffered, limit)
		}
		select {
		case <-written:
			t.Fatal("the writer finished though the reader read one byte of 256 KiB")
		default:
		}
		got, err := readAll(s, 16<<10)
		if !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		all := one
		for _, r := range got {
			all = append(all, r.data...)
		}
		if !bytes.Equal(all, data) {
			t.Errorf("read %d bytes, want the %d written in order", len(all), len(data))
		}
		<-written
	})
}

// The read deadline bounds a Read's wait for released bytes without ending
// the stream: after the deadline is lifted the bytes come, on time.
func TestDelayedStreamReadDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const latency = 50 * time.Millisecond
		s, p := delayed(t, latency, DelayBuffer)
		start := time.Now()
		go func() { _, _ = p.w.Write([]byte("late")) }()
		_ = s.SetReadDeadline(start.Add(20 * time.Millisecond))
		buf := make([]byte, 4)
		if n, err := s.Read(buf); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read = %d, %v; want 0, deadline exceeded", n, err)
		}
		if at := time.Since(start); at != 20*time.Millisecond {
			t.Errorf("deadline hit at %v, want 20ms", at)
		}
		_ = s.SetDeadline(time.Time{})
		if n, err := io.ReadFull(s, buf); n != 4 || err != nil || string(buf) != "late" {
			t.Fatalf("Read = %d %q, %v", n, buf, err)
		}
		if at := time.Since(start); at != latency {
			t.Errorf("bytes read at %v, want %v", at, latency)
		}
		_ = s.Close()
	})
}

// Close and Reset through the wrapper end a Read waiting for delayed bytes
// at once, and return only after the pump has ended; a stream never read
// starts no pump.
func TestDelayedStreamCloseAndResetEndTheWait(t *testing.T) {
	for _, c := range []struct {
		name string
		end  func(s *delayedStream) error
		want error
	}{
		{"close", (*delayedStream).Close, errReadClosed},
		{"close read", (*delayedStream).CloseRead, errReadClosed},
		{"reset", (*delayedStream).Reset, network.ErrReset},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, p := delayed(t, time.Second, DelayBuffer)
				go func() { _, _ = p.w.Write([]byte("never read")) }()
				var err error
				done := make(chan struct{})
				go func() {
					defer close(done)
					_, err = s.Read(make([]byte, 16))
				}()
				time.Sleep(10 * time.Millisecond)
				synctest.Wait()
				start := time.Now()
				_ = c.end(s)
				<-done
				if !errors.Is(err, c.want) {
					t.Errorf("Read error %v, want %v", err, c.want)
				}
				if took := time.Since(start); took != 0 {
					t.Errorf("Read ended %v after the end, want at once", took)
				}
				select {
				case <-s.pumped:
				default:
					t.Error("the end returned before the pump did")
				}
			})
		})
	}
	synctest.Test(t, func(t *testing.T) {
		s, _ := delayed(t, time.Second, DelayBuffer)
		_ = s.Close()
		if s.started {
			t.Error("a stream that was never read started a pump")
		}
	})
}

// The delay wraps the streams a host opens and accepts, each with the
// latency of its remote peer, and is never shorter than that one way; a
// peer with no latency gets its streams unwrapped.
func TestDelayWrapsOpenedAndAcceptedStreamsByRemotePeer(t *testing.T) {
	a, b := connectedPair(t)
	const latency = 30 * time.Millisecond
	of := func(remote peer.ID) time.Duration {
		if remote == a.ID() || remote == b.ID() {
			return latency
		}
		return 0
	}
	d := NewDelay(of)
	wa, wb := d.Wrap(a), d.Wrap(b)
	var wg sync.WaitGroup
	arrived := make(chan time.Duration, 1)
	start := time.Now()
	wb.SetStreamHandler("/echo/1", func(s network.Stream) {
		wg.Go(func() {
			defer func() { _ = s.Close() }()
			if _, ok := s.(*delayedStream); !ok {
				t.Errorf("the handler got a %T, want *delayedStream", s)
			}
			buf := make([]byte, 4)
			if _, err := io.ReadFull(s, buf); err != nil {
				t.Error(err)
				return
			}
			arrived <- time.Since(start)
			_, _ = s.Write(buf)
		})
	})
	s, err := wa.NewStream(context.Background(), b.ID(), "/echo/1")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*delayedStream); !ok {
		t.Errorf("NewStream gave a %T, want *delayedStream", s)
	}
	if _, err := s.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(s, buf); err != nil {
		t.Fatal(err)
	}
	rtt := time.Since(start)
	_ = s.Close()
	wg.Wait()
	if oneWay := <-arrived; oneWay < latency {
		t.Errorf("the ping arrived after %v, want at least %v", oneWay, latency)
	}
	if rtt < 2*latency {
		t.Errorf("round trip %v, want at least %v", rtt, 2*latency)
	}
	d.Wait()
	if (*Delay)(nil).Wrap(a) != a {
		t.Error("a nil delay wrapped the host")
	}
	if NewDelay(func(peer.ID) time.Duration { return 0 }).delay(s) != s {
		t.Error("a stream with no latency was wrapped")
	}
}

// Once the delay has waited for its pumps (its hosts are closed), a stream
// read for the first time starts none and fails.
func TestDelayedStreamAfterWaitStartsNoPump(t *testing.T) {
	d := NewDelay(func(peer.ID) time.Duration { return time.Second })
	d.Wait()
	s := newDelayedStream(newPipeStream(), time.Second, DelayBuffer, &d.pumps)
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Wait: %v, want net.ErrClosed", err)
	}
	_ = s.Close()
	d.Wait() // idempotent
}
