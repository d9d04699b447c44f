package testnet

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/node/peerconfig"
	"github.com/fabgossip/fabgossip/transport"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// Replays and garbage: what an eavesdropper or a member with a grudge sends
// that is well signed or well framed and still not what an honest peer
// sends.

// memberKey loads the key and certificate of the generated peer g, as an
// attacker who stole them, or recorded what they signed, would hold them.
func memberKey(g peerconfig.GeneratedPeer) (crypto.PrivKey, *wire.Certificate, error) {
	key, err := identity.LoadKey(filepath.Join(g.Dir, "peer.key"))
	if err != nil {
		return nil, nil, err
	}
	cert, err := identity.LoadCertificate(filepath.Join(g.Dir, "peer.cert"))
	if err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

// refusedHello sends a hello carrying alive from a fresh outsider, reads
// everything the target sends back and waits for the disconnection.
func (s *suite) refusedHello(ctx context.Context, alive *wire.Envelope) (int64, string, bool, error) {
	h, err := s.outsider(ctx)
	if err != nil {
		return 0, "", false, err
	}
	defer h.Close()
	frame, err := transport.AppendFrame(nil, &wire.Hello{Alive: alive}, hostileFrame)
	if err != nil {
		return 0, "", false, err
	}
	sent, got, err := s.write(ctx, h, transport.ProtocolHello, frame)
	if err != nil {
		return sent, "", false, err
	}
	gone := waitDisconnected(ctx, h, s.target.peer.ID, 3*time.Second)
	return sent, fmt.Sprintf("%d bytes back; disconnected after %v", got, gone.Round(10*time.Millisecond)), got == 0 && gone >= 0, nil
}

func (s *suite) garbageHello(ctx context.Context) (int64, string, bool, error) {
	junk := make([]byte, 512)
	_, _ = crand.Read(junk)
	return s.refusedHello(ctx, &wire.Envelope{Payload: junk, Signature: junk[:64]})
}

// helloReplay presents the honest peer's own alive, genuinely signed (as an
// eavesdropper on an unencrypted path, or a peer it greeted, would have it),
// from an outsider's connection.
func (s *suite) helloReplay(ctx context.Context) (int64, string, bool, error) {
	key, cert, err := memberKey(s.honest.peer)
	if err != nil {
		return 0, "", false, err
	}
	alive, err := transport.Sign(key, &wire.Message{Content: &wire.Message_Alive{Alive: &wire.Alive{
		Certificate: cert, External: s.honest.peer.External, Incarnation: uint64(time.Now().UnixNano()), Sequence: 1}}})
	if err != nil {
		return 0, "", false, err
	}
	return s.refusedHello(ctx, alive)
}

// publishToReplay is the setup of blockReplays: the replayer joins,
// catches up with the target's chain and publishes one genuine block,
// which the target delivers, all before the attack is measured.
func (s *suite) publishToReplay(ctx context.Context) error {
	if _, err := s.join(ctx, s.replayer); err != nil {
		return err
	}
	p, err := s.member(s.replayer)
	if err != nil {
		return err
	}
	// Caught up first, so that the block continues the target's chain.
	target, err := s.height(ctx)
	if err != nil {
		return err
	}
	if err := s.until(ctx, fmt.Sprintf("%s at height %d", s.replayer.Name, target), func() (bool, error) {
		h, err := p.Node().Height("ch")
		return h >= target, err
	}); err != nil {
		return err
	}
	b, err := p.Node().Publish(ctx, "ch", []byte("published once, replayed"))
	if err != nil {
		return err
	}
	s.replayed = b
	return s.until(ctx, fmt.Sprintf("block %d at the target", b.Number), func() (bool, error) {
		h, err := s.height(ctx)
		return h > b.Number, err
	})
}

// blockReplays pushes, from the member that published it, frames of 20
// copies of its genuine block again and again. Each copy is refused as a
// duplicate before any signature check; the replays raise the member's
// score until it is ejected, and the target's height does not move.
func (s *suite) blockReplays(ctx context.Context) (int64, string, bool, error) {
	b := s.replayed
	// The same block again: ed25519 signatures are deterministic, so
	// this is the envelope the member pushed.
	key, cert, err := memberKey(s.replayer)
	if err != nil {
		return 0, "", false, err
	}
	dh := sha256.Sum256(b.Data)
	env, err := transport.Sign(key, &wire.Message{Content: &wire.Message_Block{Block: &wire.Block{
		Channel: b.Channel, Number: b.Number, PreviousHash: b.PreviousHash, DataHash: dh[:], Data: b.Data,
		Publisher: []byte(b.Publisher), PublisherCertificate: cert, PublishedAt: b.PublishedAt.UnixNano()}}})
	if err != nil {
		return 0, "", false, err
	}
	envs := make([]*wire.Envelope, 20)
	for i := range envs {
		envs[i] = env
	}
	return s.ejectionAt(ctx, s.replayer, envs, 30, b.Number+1, "the block delivered once")
}

// memberGarbage has an admitted member send frames of random bytes, in
// turn on the push and the pull protocol, until the target ejects it.
func (s *suite) memberGarbage(ctx context.Context) (int64, string, bool, error) {
	p, err := s.member(s.garbler)
	if err != nil {
		return 0, "", false, err
	}
	h := p.Host()
	junk := make([]byte, 4<<10)
	var sent, answered int64
	const maxFrames = 40
	for i := range maxFrames {
		if h.Network().Connectedness(s.target.peer.ID) != network.Connected {
			return sent, fmt.Sprintf("disconnected after %d frames of garbage (push and pull in turn), %d bytes answered", i, answered), answered == 0, nil
		}
		_, _ = crand.Read(junk)
		junk[0] = 0x0f // field 1 with wire type 7, which does not exist: never decodes
		pid := transport.ProtocolPush
		if i%2 == 1 {
			pid = transport.ProtocolPull
		}
		w, r, err := s.write(ctx, h, pid, protowire.AppendBytes(nil, junk))
		if err != nil {
			return sent, "", false, err
		}
		sent += w
		answered += r
		waitDisconnected(ctx, h, s.target.peer.ID, 50*time.Millisecond)
	}
	return sent, fmt.Sprintf("still connected after %d frames of garbage", maxFrames), false, nil
}

// joinFn is an attack's setup that starts g as a member, unless an
// earlier attack did.
func (s *suite) joinFn(g peerconfig.GeneratedPeer) func(context.Context) error {
	return func(ctx context.Context) error {
		if _, err := s.member(g); err == nil {
			return nil
		}
		_, err := s.join(ctx, g)
		return err
	}
}

// until polls cond every pollInterval until it holds, fails or
// StartTimeout passes.
func (s *suite) until(ctx context.Context, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(s.o.StartTimeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s", what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}
