package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// blockSigner is what SystemGossipSubNoSign adds to GossipSub: no pubsub
// signature, author or sequence number (StrictNoSign, WithNoAuthor), a
// message ID over the data, and application-level signatures. The
// publisher sends data ‖ an Ed25519 signature of data by its host key;
// every subscriber's topic validator checks it against the channel
// publisher's public key before delivery, as fabgossip verifies a block.
// A nil *blockSigner is plain GossipSub (StrictSign): every method is then
// a no-op.
type blockSigner struct {
	keys map[int]crypto.PrivKey // channel → its publisher's host key
}

func newBlockSigner(noSign bool) *blockSigner {
	if !noSign {
		return nil
	}
	return &blockSigner{keys: map[int]crypto.PrivKey{}}
}

// option is the pubsub option of the signing mode: StrictNoSign, no author,
// and dataMsgID (the default ID, From ‖ Seqno, is empty without an author,
// so every message would collide).
func (b *blockSigner) option() pubsub.Option {
	return func(p *pubsub.PubSub) error {
		if b == nil {
			return nil
		}
		for _, o := range []pubsub.Option{
			pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
			pubsub.WithNoAuthor(),
			pubsub.WithMessageIdFn(dataMsgID),
		} {
			if err := o(p); err != nil {
				return err
			}
		}
		return nil
	}
}

// dataMsgID is SHA-256 of the message data (block and signature): a
// forgery gets an ID of its own, so a rejected forgery arriving first
// cannot shadow the real block.
func dataMsgID(m *pb.Message) string {
	h := sha256.Sum256(m.GetData())
	return string(h[:])
}

// join registers, on host i's router ps, the block validator of channel c's
// topic (inline: an Ed25519 check, the same work StrictSign does in the
// validation worker), and keeps host i's key if it is c's publisher.
func (b *blockSigner) join(ps *pubsub.PubSub, l *layout, hosts []host.Host, c, i int) error {
	if b == nil {
		return nil
	}
	pub := hosts[l.channels[c].publisher]
	pk, err := pub.ID().ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("channel %s publisher's key: %w", l.channels[c].name, err)
	}
	if err := ps.RegisterTopicValidator(topicName(l, c), blockValidator(pk, c), pubsub.WithValidatorInline(true)); err != nil {
		return err
	}
	if i == l.channels[c].publisher {
		k := pub.Peerstore().PrivKey(pub.ID())
		if k == nil {
			return fmt.Errorf("channel %s publisher has no private key", l.channels[c].name)
		}
		b.keys[c] = k
	}
	return nil
}

// block returns what the publisher of channel c sends for data: data itself
// for plain GossipSub, data ‖ signature for the no-sign mode.
func (b *blockSigner) block(c int, data []byte) ([]byte, error) {
	if b == nil {
		return data, nil
	}
	k := b.keys[c]
	if k == nil {
		return nil, errors.New("gossipsub-nosign: no publisher key for the channel")
	}
	return signBlock(k, data)
}

func (b *blockSigner) String() string {
	if b == nil {
		return "StrictSign with Ed25519 keys"
	}
	return "StrictNoSign and WithNoAuthor (no From, Seqno, signature or key in a message), message ID SHA-256(data), each block signed by its publisher's Ed25519 host key (data ‖ signature) and checked by an inline topic validator on every subscriber"
}

// signBlock returns data ‖ the Ed25519 signature of data by k.
func signBlock(k crypto.PrivKey, data []byte) ([]byte, error) {
	sig, err := k.Sign(data)
	if err != nil {
		return nil, err
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("gossipsub-nosign: %d-byte signature, want an Ed25519 key", len(sig))
	}
	out := make([]byte, 0, len(data)+len(sig))
	return append(append(out, data...), sig...), nil
}

// verifyBlock reports whether m (data ‖ signature) is a block of channel c
// signed by pk.
func verifyBlock(pk crypto.PubKey, c int, m []byte) bool {
	n := len(m) - ed25519.SignatureSize
	if n < headerSize {
		return false
	}
	if ch, _, ok := readHeader(m); !ok || ch != c {
		return false
	}
	ok, err := pk.Verify(m[:n], m[n:])
	return err == nil && ok
}

// blockValidator is channel c's topic validator: accept what verifyBlock
// accepts, reject the rest (a rejected message is neither delivered nor
// forwarded, and pubsub penalises its sender).
func blockValidator(pk crypto.PubKey, c int) func(context.Context, peer.ID, *pubsub.Message) pubsub.ValidationResult {
	return func(_ context.Context, _ peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		if verifyBlock(pk, c, m.GetData()) {
			return pubsub.ValidationAccept
		}
		return pubsub.ValidationReject
	}
}
