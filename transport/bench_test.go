package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// benchRaw is the baseline protocol: the same frames written straight to a
// libp2p stream and read back without decoding.
const benchRaw protocol.ID = "/fabgossip/bench-raw/1.0.0"

// benchWindow bounds the batches in flight in the transport benchmark (and
// is its queue size), so Send never finds the queue full.
const benchWindow = 256

var benchSizes = []struct {
	name string
	size int
}{{"1KiB", 1 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}}

// BenchmarkPush measures push throughput from one sender to one receiver
// on loopback, for the transport and for a raw stream carrying the same
// frames. The transport sub-benchmark reports x_raw, its throughput over
// the raw run just before it, and x_reuse, over the raw-reuse run.
//
// raw is the fair baseline: its receiver reads every frame into a slice of
// its own, as the transport must, since its handler keeps the batch (node
// keeps the envelopes). raw-reuse reads every frame into one reused buffer,
// which no receiver that hands frames on can do: it skips the allocation
// per frame and what that costs (zeroing or faulting in fresh memory, and
// garbage collection; at 64 KiB, more CPU than the copy itself). It was the
// baseline of x_raw until x_raw moved to raw, and is kept to show what the
// hand-off costs.
//
// Both sides run in one process, so cpu-µs/msg (user + system time of the
// whole process over the run, per message) counts sender and receiver.
func BenchmarkPush(b *testing.B) {
	for _, kind := range []string{"tcp", "quic"} {
		b.Run(kind, func(b *testing.B) {
			hs := newHosts(b, kind, 2)
			for _, sz := range benchSizes {
				b.Run(sz.name, func(b *testing.B) {
					batch := batchOf(sz.size, 7)
					frame, err := AppendFrame(nil, batch, 2<<20)
					if err != nil {
						b.Fatal(err)
					}
					var rawMBps, reuseMBps float64
					b.Run("raw-reuse", func(b *testing.B) {
						reuseMBps = benchRawPush(b, hs[0], hs[1], frame, true)
					})
					b.Run("raw", func(b *testing.B) {
						rawMBps = benchRawPush(b, hs[0], hs[1], frame, false)
					})
					b.Run("transport", func(b *testing.B) {
						mbps := benchTransportPush(b, hs[0], hs[1], batch, len(frame))
						if rawMBps > 0 {
							b.ReportMetric(mbps/rawMBps, "x_raw")
						}
						if reuseMBps > 0 {
							b.ReportMetric(mbps/reuseMBps, "x_reuse")
						}
					})
				})
			}
		})
	}
}

// benchClock is a benchmark's wall and CPU clocks.
type benchClock struct {
	wall time.Time
	cpu  time.Duration
}

func startClock() benchClock { return benchClock{time.Now(), cpuTime()} }

func reportThroughput(b *testing.B, frameLen int, start benchClock) float64 {
	secs := time.Since(start.wall).Seconds()
	cpu := cpuTime() - start.cpu
	b.StopTimer()
	b.SetBytes(int64(frameLen))
	b.ReportMetric(float64(b.N)/secs, "msgs/s")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
	}
	return float64(b.N) * float64(frameLen) / secs / 1e6
}

// benchRawPush writes frame b.N times on a stream of benchRaw. Its receiver
// reads each length prefix and body, into a fresh slice that it could hand
// on, or, with reuse, into one buffer for all frames.
func benchRawPush(b *testing.B, from, to host.Host, frame []byte, reuse bool) float64 {
	n := b.N
	done := make(chan error, 1)
	to.SetStreamHandler(benchRaw, func(s network.Stream) {
		r := bufio.NewReaderSize(s, readBufferSize)
		buf := make([]byte, len(frame))
		for range n {
			size, err := binary.ReadUvarint(r)
			if err == nil {
				body := buf[:size]
				if !reuse {
					body = make([]byte, size)
				}
				_, err = io.ReadFull(r, body)
			}
			if err != nil {
				_ = s.Reset()
				done <- err
				return
			}
		}
		_ = s.Close()
		done <- nil
	})
	defer to.RemoveStreamHandler(benchRaw)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := from.NewStream(ctx, to.ID(), benchRaw)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	start := startClock()
	go func() {
		for range n {
			if _, err := s.Write(frame); err != nil {
				_ = s.Reset()
				return
			}
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			b.Fatal(err)
		}
	case <-time.After(time.Minute):
		b.Fatal("raw receiver stalled")
	}
	return reportThroughput(b, len(frame), start)
}

func benchTransportPush(b *testing.B, from, to host.Host, batch *wire.Batch, frameLen int) float64 {
	n := int64(b.N)
	cfg := DefaultConfig()
	cfg.SendQueueSize = benchWindow
	cfg.SendQueueBytes = benchWindow * cfg.MaxFrameSize // the window bounds it
	// The transport's own path, as against a raw stream: with the default
	// budget one sender is held to InboundBytesPerSecond.
	cfg.InboundBytesPerSecond = 0
	window := make(chan struct{}, benchWindow)
	done := make(chan struct{})
	var got atomic.Int64
	handler := func(peer.ID, *wire.Batch) {
		<-window
		if got.Add(1) == n {
			close(done)
		}
	}
	tf, err := New(from, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer tf.Close()
	tt, err := New(to, cfg, WithPushHandler(handler))
	if err != nil {
		b.Fatal(err)
	}
	defer tt.Close()

	b.ResetTimer()
	start := startClock()
	for range n {
		window <- struct{}{}
		if err := tf.Send(to.ID(), batch); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatalf("received %d of %d batches", got.Load(), n)
	}
	return reportThroughput(b, frameLen, start)
}
