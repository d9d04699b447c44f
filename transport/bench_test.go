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
// the raw run just before it.
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
					var rawMBps float64
					b.Run("raw", func(b *testing.B) {
						rawMBps = benchRawPush(b, hs[0], hs[1], frame)
					})
					b.Run("transport", func(b *testing.B) {
						mbps := benchTransportPush(b, hs[0], hs[1], batch, len(frame))
						if rawMBps > 0 {
							b.ReportMetric(mbps/rawMBps, "x_raw")
						}
					})
				})
			}
		})
	}
}

func reportThroughput(b *testing.B, frameLen int, elapsed time.Duration) float64 {
	b.SetBytes(int64(frameLen))
	secs := elapsed.Seconds()
	b.ReportMetric(float64(b.N)/secs, "msgs/s")
	return float64(b.N) * float64(frameLen) / secs / 1e6
}

func benchRawPush(b *testing.B, from, to host.Host, frame []byte) float64 {
	n := b.N
	done := make(chan error, 1)
	to.SetStreamHandler(benchRaw, func(s network.Stream) {
		r := bufio.NewReaderSize(s, readBufferSize)
		buf := make([]byte, len(frame))
		for range n {
			size, err := binary.ReadUvarint(r)
			if err == nil {
				_, err = io.ReadFull(r, buf[:size])
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
	start := time.Now()
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
	elapsed := time.Since(start)
	b.StopTimer()
	return reportThroughput(b, len(frame), elapsed)
}

func benchTransportPush(b *testing.B, from, to host.Host, batch *wire.Batch, frameLen int) float64 {
	n := int64(b.N)
	cfg := DefaultConfig()
	cfg.SendQueueSize = benchWindow
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
	start := time.Now()
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
	elapsed := time.Since(start)
	b.StopTimer()
	return reportThroughput(b, frameLen, elapsed)
}
