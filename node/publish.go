package node

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/fabgossip/fabgossip/node/chunk"
	"github.com/fabgossip/fabgossip/routing"
	"github.com/fabgossip/fabgossip/routing/tree"
	"github.com/fabgossip/fabgossip/transport"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// Publish signs data as the next block of channel ch, delivers it locally and
// pushes it. Only a peer whose org may publish on ch can; a channel is meant
// to have one publishing peer at a time (the role Fabric's orderer plays):
// two peers publishing concurrently would both claim the same number.
// Concurrent calls on one peer take consecutive numbers.
//
// The block is durable (when the node has a store) before anything of it
// leaves this peer, so a restart cannot sign another block with its number
// after the first went out.
func (n *Node) Publish(ctx context.Context, ch string, data []byte) (Block, error) {
	if err := ctx.Err(); err != nil {
		return Block{}, err
	}
	if len(data) > n.cfg.MaxBlockBytes {
		return Block{}, fmt.Errorf("%w: %d bytes, MaxBlockBytes %d", ErrBlockTooLarge, len(data), n.cfg.MaxBlockBytes)
	}
	cs, err := n.publishable(ch)
	if err != nil {
		return Block{}, err
	}
	// The block is hashed and signed outside cs.mu, which every inbound
	// block of the channel takes: for a block of megabytes that is
	// milliseconds of CPU. publishMu keeps this peer's publications of ch in
	// turn; the number and previous hash read before signing are checked
	// again when the block is added, and a block of another publisher that
	// took the number in between means signing again.
	cs.publishMu.Lock()
	defer cs.publishMu.Unlock()
	// Data over ChunkThreshold is committed to in chunks: the signed block
	// is a header, and the data is held as a complete Assembly that serves
	// the chunks (node/chunk).
	var commitment chunk.Commitment
	var whole *chunk.Assembly
	var dh [sha256.Size]byte
	if n.cfg.ChunkThreshold > 0 && len(data) > n.cfg.ChunkThreshold {
		commitment, err = chunk.Commit(data, uint32(n.cfg.ChunkSize), chunk.DefaultLimits())
		if err != nil {
			return Block{}, fmt.Errorf("%w: %w", ErrBlockTooLarge, err)
		}
		if whole, err = chunk.Assembled(commitment, data); err != nil {
			return Block{}, fmt.Errorf("node: assembling block: %w", err)
		}
	} else {
		dh = sha256.Sum256(data)
	}
	for {
		if err := n.stillPublishable(ch, cs); err != nil {
			return Block{}, err
		}
		cs.mu.Lock()
		num, prev := cs.ledger.staged, cs.ledger.stagedHash
		cs.mu.Unlock()
		msg := &wire.Block{
			Channel:              ch,
			Number:               num,
			PreviousHash:         prev,
			DataHash:             dh[:],
			Data:                 data,
			Publisher:            []byte(n.self),
			PublisherCertificate: n.cert,
			PublishedAt:          n.now().UnixNano(),
		}
		if whole != nil {
			commitment.Fill(msg)
		}
		env, err := transport.Sign(n.signingKey(), &wire.Message{Content: &wire.Message_Block{Block: msg}})
		if err != nil {
			return Block{}, fmt.Errorf("node: signing block: %w", err)
		}
		b := &block{env: env, msg: msg, hash: BlockHash(msg), size: envSize(env), at: n.now(), done: make(chan error, 1)}
		if whole != nil {
			b.chunks = newChunkedBlock(ch, num, b.hash, whole, "")
			b.chunks.org = n.org
		}

		if err := n.stillPublishable(ch, cs); err != nil {
			return Block{}, err
		}
		cs.mu.Lock()
		if cs.ledger.staged != num || cs.ledger.blocks[num] != nil {
			cs.mu.Unlock()
			if err := ctx.Err(); err != nil {
				return Block{}, err
			}
			continue
		}
		ready, _ := cs.ledger.add(b)
		cs.stageLocked(ready)
		cs.mu.Unlock()

		if err := n.awaitDurable(ctx, b); err != nil {
			cs.mu.Lock()
			if cs.ledger.height <= num {
				delete(cs.ledger.blocks, num)
			}
			cs.mu.Unlock()
			return Block{}, fmt.Errorf("node: storing block %d of %q: %w", num, ch, err)
		}
		pb := publicBlock(b)
		n.tracer.BlockAccepted(pb, n.self, ViaPublish)
		if n.tree != nil {
			n.step(func(m *tree.Machine, now time.Time) { m.Publish(tree.ID{Channel: ch, Root: n.self}, num, now) })
			if b.chunks != nil {
				n.stripeNew(cs, b.chunks, true)
			}
			return pb, nil
		}
		n.emit(outMsg{
			Kind:           routing.KindBlock,
			Channel:        ch,
			Origin:         n.self,
			OriginOrg:      n.org,
			OriginExternal: n.external,
			CrossOrg:       n.external,
			Payload:        env,
		}, "")
		return pb, nil
	}
}

// awaitDurable waits until the writer has persisted and delivered b, or
// failed to.
func (n *Node) awaitDurable(ctx context.Context, b *block) error {
	select {
	case err := <-b.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.ctx.Done():
		return ErrClosed
	}
}

// publishable returns the state of channel ch if this peer may publish on
// it now: open, joined and not left, and its org a publisher of ch.
func (n *Node) publishable(ch string) (*channelState, error) {
	cs, err := n.joinedChannel(ch)
	if err != nil {
		return nil, err
	}
	if !n.network().MayPublish(n.org, ch) {
		return nil, fmt.Errorf("%w: org %s, channel %q", ErrMayNotPublish, n.org, ch)
	}
	return cs, nil
}

// stillPublishable is publishable for a Publish under way on cs, which the
// channel may have lost to a network config update meanwhile.
func (n *Node) stillPublishable(ch string, cs *channelState) error {
	got, err := n.publishable(ch)
	if err == nil && got != cs {
		err = fmt.Errorf("%w: org %s, channel %q", ErrNotMember, n.org, ch)
	}
	return err
}
