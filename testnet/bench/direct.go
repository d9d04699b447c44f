package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/multiformats/go-varint"
)

// ProtocolDirect carries the direct system's blocks: uvarint-length-prefixed
// block data, publisher to member, on one long-lived stream per member.
const ProtocolDirect protocol.ID = "/fabgossip-bench/direct/1.0.0"

// directSUT is the publisher of each channel writing every block to every
// member itself: one hop, no relays, no signatures.
type directSUT struct {
	mn      mocknet.Mocknet // nil over TCP
	net     *sysNet
	l       *layout
	writers [][]*directWriter // channel → one writer per member
	wg      sync.WaitGroup
	hosts   hostList // by peer index (crash.go)
}

type directWriter struct {
	frames chan []byte
	s      network.Stream
}

func newDirect(ctx context.Context, env *runEnv) (*directSUT, error) {
	l := env.l
	net := newSysNet(env)
	hosts, err := net.peerHosts(env, false)
	if err != nil {
		return nil, errors.Join(err, net.close())
	}
	s := &directSUT{mn: net.mn, net: net, l: l, hosts: hosts}
	maxFrame := env.size + 1024
	for i, h := range hosts {
		h.SetStreamHandler(ProtocolDirect, func(st network.Stream) {
			defer func() { _ = st.Reset() }()
			r := bufio.NewReader(st)
			for {
				n, err := varint.ReadUvarint(r)
				if err != nil || n > uint64(maxFrame) {
					return
				}
				if n == 0 {
					continue // the opening frame (newDirect)
				}
				buf := make([]byte, n)
				if _, err := io.ReadFull(r, buf); err != nil {
					return
				}
				env.rec.copies.Add(1)
				if c, num, ok := readHeader(buf); ok && c < len(l.channels) {
					env.rec.arrived(c, num, i, true)
				}
			}
		})
	}
	s.writers = make([][]*directWriter, len(l.channels))
	for c, ch := range l.channels {
		pub := hosts[ch.publisher]
		for _, m := range ch.members {
			if m == ch.publisher {
				continue
			}
			if err := net.connect(ctx, pub, hosts[m]); err != nil {
				return nil, errors.Join(err, s.close())
			}
			st, err := pub.NewStream(ctx, hosts[m].ID(), ProtocolDirect)
			if err != nil {
				return nil, errors.Join(fmt.Errorf("direct stream to %d: %w", m, err), s.close())
			}
			// An empty frame now: libp2p negotiates the protocol lazily, with
			// the first write, and the member's side gives up on a stream
			// whose protocol has not arrived within its negotiation timeout
			// (10 s), shorter than the idle window before the first block.
			if _, err := st.Write(varint.ToUvarint(0)); err != nil {
				_ = st.Reset()
				return nil, errors.Join(fmt.Errorf("direct stream to %d: %w", m, err), s.close())
			}
			w := &directWriter{frames: make(chan []byte, env.blocks+1), s: st}
			s.writers[c] = append(s.writers[c], w)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() { _ = st.Close() }()
				for f := range w.frames {
					if _, err := st.Write(f); err != nil {
						_ = st.Reset()
						lost := 1
						for range w.frames { // drain
							lost++
						}
						env.rec.dropped("direct/write_error", lost)
						return
					}
					env.rec.bytesSent(ch.publisher, len(f))
					env.rec.sentCopies.Add(1)
				}
			}()
		}
	}
	return s, nil
}

func (s *directSUT) publish(_ context.Context, c int, _ uint64, data []byte) error {
	f := varint.ToUvarint(uint64(len(data)))
	f = append(f, data...)
	for _, w := range s.writers[c] {
		select {
		case w.frames <- f:
		default:
			return errors.New("direct: writer queue full")
		}
	}
	return nil
}

func (s *directSUT) describe() (string, string) {
	return "the channel's publisher writes each block (no signature) to a long-lived stream per member, one writer goroutine per member",
		"none needed: the publisher only opens streams to members"
}

func (s *directSUT) close() error {
	for _, ws := range s.writers {
		for _, w := range ws {
			close(w.frames)
		}
	}
	s.writers = nil
	err := s.net.close()
	s.wg.Wait()
	return err
}
