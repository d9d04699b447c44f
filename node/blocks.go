package node

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/node/chunk"
	"github.com/fabgossip/fabgossip/routing"
	"github.com/fabgossip/fabgossip/routing/tree"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// Receiving blocks: cheap dedup, sender, signature, authority, data hash,
// then the ledger, the writer and forwarding, in that order.

// admitBlock is the cheap step run before any signature check on block num
// of channel ch from from: the channel is joined here, the block is neither
// delivered, held nor too far ahead, and the audience lets from send it
// (routing.View.BlockSender). A refusal is counted; otherwise it returns the
// channel's state.
func (n *Node) admitBlock(from peer.ID, ch string, num uint64) (*channelState, bool) {
	cs, _, ok := n.admit(from, ch, num)
	return cs, ok
}

// admit is admitBlock that also says whether a refused block was a
// duplicate, which the tree learns from.
func (n *Node) admit(from peer.ID, ch string, num uint64) (cs *channelState, dup, ok bool) {
	const kind = "block"
	cs = n.channel(ch)
	if cs == nil {
		n.drop(kind, reasonNotInChannel, from)
		return nil, false, false
	}
	cs.mu.Lock()
	active, err := cs.activeLocked(), cs.ledger.check(num)
	cs.mu.Unlock()
	switch {
	case !active:
		n.drop(kind, reasonNotInChannel, from)
		return nil, false, false
	case errors.Is(err, errDuplicate):
		n.metrics.duplicates.WithLabelValues(kind).Inc()
		return nil, true, false
	case err != nil:
		n.drop(kind, reasonTooFarAhead, from)
		return nil, false, false
	}
	if reason := senderReason(n.view(), from, ch); reason != "" {
		n.drop(kind, reason, from)
		return nil, false, false
	}
	return cs, false, true
}

// handleBlock checks and applies a block. It returns false only for a block
// that failed an integrity check; duplicates and blocks this peer does not
// take (not its channel, too far ahead, an unknown sender) are not evidence
// of forgery.
func (n *Node) handleBlock(from peer.ID, env *wire.Envelope, msg *wire.Block, via Path) bool {
	const kind = "block"
	ch := msg.GetChannel()
	cs, ok := n.admitBlock(from, ch, msg.GetNumber())
	if !ok {
		return true
	}
	publisher, org, commitment, reason := n.verifyBlock(env, msg)
	if reason != "" {
		n.drop(kind, reason, from)
		return reason == reasonTooLarge // this peer's limit, not the sender's fault
	}

	b := &block{env: env, msg: msg, hash: BlockHash(msg), size: envSize(env), at: n.now()}
	if commitment.Valid() {
		// A chunked header: its data is assembled from chunks, within the
		// node's caps on assemblies under way.
		if !n.reserveAssembly(commitment.DataSize()) {
			n.drop(kind, reasonAssembliesFull, from)
			return true
		}
		asm, _ := chunk.NewAssembly(commitment) // valid: cannot fail
		b.chunks = newChunkedBlock(ch, msg.GetNumber(), b.hash, asm, from)
		b.chunks.org = org
		b.chunks.reserved = true
		if via != ViaPull {
			b.chunks.progress = b.at // a pulled header repairs at once: its sender holds the block
		}
	}
	// Read before b is shared: once in the ledger, a chunked block's
	// assembly changes under the channel's lock.
	pb := publicBlock(b)
	cs.mu.Lock()
	if !cs.activeLocked() || cs.ledger.check(msg.GetNumber()) != nil { // raced with another copy
		n.releaseLocked(b.chunks)
		cs.mu.Unlock()
		n.metrics.duplicates.WithLabelValues(kind).Inc()
		return true
	}
	cs.ledger.add(b)
	broken := n.stageReadyLocked(cs)
	cs.mu.Unlock()
	if b.chunks != nil && via == ViaPull {
		n.kickRepair() // a pulled header: pull its chunks at once
	}

	n.metrics.blocksAccepted.WithLabelValues(via.String()).Inc()
	n.tracer.BlockAccepted(pb, from, via)
	// A broken link shows up when the gap before it closes, perhaps long
	// after it arrived from someone else: counted, not held against from.
	for range broken {
		n.drop(kind, reasonBrokenChain, from)
	}
	if n.tree != nil {
		// A block accepted by pull is forwarded along the tree too: it is
		// news to this peer's children.
		link := from
		if via != ViaPush {
			link = "" // not a push on a tree link
		}
		n.step(func(m *tree.Machine, now time.Time) {
			m.Payload(link, tree.ID{Channel: ch, Root: publisher}, msg.GetNumber(), true, now)
		})
		if b.chunks != nil {
			n.stripeNew(cs, b.chunks, false)
			n.applyEarly(ch, msg.GetNumber(), b.hash)
		}
		return true
	}
	n.emit(outMsg{
		Kind:      routing.KindBlock,
		Channel:   ch,
		Origin:    publisher,
		OriginOrg: org,
		From:      from,
		// An external peer hands a block of its own org's publisher to the
		// channel's other orgs when it first accepts it.
		CrossOrg: n.external && org == n.org,
		Payload:  env,
	}, "")
	return true
}

// verifyBlock checks what makes a block authentic: the publisher's
// signature, its certificate, its org's right to publish on the channel,
// and the data hash, or for a chunked header its chunk commitment (within
// chunk.DefaultLimits), which it returns. It returns the publisher and its
// org, or the reason the block is refused.
func (n *Node) verifyBlock(env *wire.Envelope, msg *wire.Block) (publisher peer.ID, org string, c chunk.Commitment, reason string) {
	publisher, err := peer.IDFromBytes(msg.GetPublisher())
	if err != nil {
		return "", "", c, reasonMalformed
	}
	if !signedBy(env, publisher) {
		return "", "", c, reasonBadSignature
	}
	v, err := n.certs.Verify(n.network(), msg.GetPublisherCertificate(), publisher, n.now())
	if err != nil {
		return "", "", c, reasonBadCertificate
	}
	if !n.network().MayPublish(v.Org, msg.GetChannel()) {
		return "", "", c, reasonMayNotPublish
	}
	c, err = chunk.FromBlock(msg, chunk.DefaultLimits())
	switch {
	case errors.Is(err, chunk.ErrNotChunked):
		if dh := sha256.Sum256(msg.GetData()); !bytes.Equal(dh[:], msg.GetDataHash()) {
			return "", "", c, reasonDataHash
		}
	case errors.Is(err, chunk.ErrTooLarge):
		return "", "", c, reasonTooLarge
	case err != nil:
		return "", "", c, reasonBadCommitment
	}
	return publisher, v.Org, c, ""
}

// peekBlock reads the channel, number and publisher of the block a Message
// payload carries, without decoding or copying the rest of it. It reports false
// unless the payload is exactly one block field whose channel (valid UTF-8)
// and number each appear at most once, as every encoder writes them, so that
// what it reads is what proto.Unmarshal would; anything else is left to the
// full decode.
func peekBlock(payload []byte) (ch string, num uint64, publisher []byte, ok bool) {
	b, ok := blockField(payload)
	if !ok {
		return "", 0, nil, false
	}
	var seenCh, seenNum, seenPub bool
	ok = eachField(b, func(f protowire.Number, typ protowire.Type, v []byte, x uint64) bool {
		switch {
		case f == 1 && typ == protowire.BytesType && !seenCh && utf8.Valid(v): // Block.channel
			ch, seenCh = string(v), true
		case f == 2 && typ == protowire.VarintType && !seenNum: // Block.number
			num, seenNum = x, true
		case f == 6 && typ == protowire.BytesType && !seenPub: // Block.publisher
			publisher, seenPub = v, true
		case f == 1 || f == 2 || f == 6:
			return false
		}
		return true
	})
	return ch, num, publisher, ok
}

// PeekBlock reads the channel and number of the block env carries, without
// decoding or copying the rest of it, for tracers that count blocks on
// Received: decoding there would copy every block received, duplicates
// included, which the node itself never does. ok is false for an envelope
// that does not carry a block in the shape every encoder writes; a tracer
// may decode those the generic way.
func PeekBlock(env *wire.Envelope) (channel string, number uint64, ok bool) {
	ch, num, _, ok := peekBlock(env.GetPayload())
	return ch, num, ok
}

// decodeBlock decodes a Message payload that carries a block, with the
// block's byte fields aliasing payload instead of copying it: a verified
// block is then held once, in its envelope. It accepts exactly the shape
// every encoder writes (each known field at most once, with its declared
// type; chunk hashes repeated; unknown fields skipped) and reports false for
// anything else, which the caller decodes the generic way.
//
// Chunk hashes are counted while decoding: past chunk.DefaultMaxChunks+1 of
// them the rest are left out, so a payload of empty entries costs no more
// than that many slice headers, and the header fails its commitment check
// (the count no longer matches) instead of being decoded whole; such a
// payload is reported decoded even when it is otherwise malformed, so the
// caller never hands it to proto.Unmarshal.
func decodeBlock(payload []byte) (*wire.Block, bool) {
	body, ok := blockField(payload)
	if !ok {
		return nil, false
	}
	blk := new(wire.Block)
	var seen [11]bool
	ok = eachField(body, func(f protowire.Number, typ protowire.Type, v []byte, x uint64) bool {
		if f == 11 { // chunk_hashes
			if typ != protowire.BytesType {
				return true // proto.Unmarshal keeps it aside as unknown too
			}
			if len(blk.ChunkHashes) <= chunk.DefaultMaxChunks {
				blk.ChunkHashes = append(blk.ChunkHashes, v[:len(v):len(v)])
			}
			return true
		}
		if f < 1 || f > 10 {
			return true // unknown: skipped, as proto.Unmarshal keeps it aside
		}
		if seen[f] {
			return false
		}
		seen[f] = true
		varint := f == 2 || f == 8 || f == 9 || f == 10
		if varint != (typ == protowire.VarintType) || !varint && typ != protowire.BytesType {
			return false
		}
		switch f {
		case 1:
			if !utf8.Valid(v) {
				return false
			}
			blk.Channel = string(v)
		case 2:
			blk.Number = x
		case 3:
			blk.PreviousHash = v
		case 4:
			blk.DataHash = v
		case 5:
			blk.Data = v
		case 6:
			blk.Publisher = v
		case 7:
			blk.PublisherCertificate = new(wire.Certificate)
			if proto.Unmarshal(v, blk.PublisherCertificate) != nil {
				return false
			}
		case 8:
			blk.PublishedAt = int64(x)
		case 9:
			if x > math.MaxUint32 {
				return false // proto would truncate; leave it to the generic path
			}
			blk.ChunkSize = uint32(x)
		case 10:
			blk.DataSize = x
		}
		return true
	})
	if !ok && len(blk.ChunkHashes) > chunk.DefaultMaxChunks {
		return blk, true // refused by its commitment check, never decoded whole
	}
	return blk, ok
}

// chunkHashesWithinCap reports whether no block field of a Message payload
// has more than chunk.DefaultMaxChunks chunk hashes, counting without
// allocating: proto.Unmarshal allocates a slice header per entry, 48 MiB
// for a 4 MiB frame of empty ones, and no header may have more.
func chunkHashesWithinCap(payload []byte) bool {
	ok := true
	eachField(payload, func(f protowire.Number, typ protowire.Type, v []byte, _ uint64) bool {
		if f != 1 || typ != protowire.BytesType {
			return true
		}
		count := 0
		eachField(v, func(f protowire.Number, typ protowire.Type, _ []byte, _ uint64) bool {
			if f == 11 && typ == protowire.BytesType {
				count++
			}
			return count <= chunk.DefaultMaxChunks
		})
		ok = count <= chunk.DefaultMaxChunks
		return ok
	})
	return ok
}

// blockField returns the body of a payload that is exactly one
// Message.block field.
func blockField(payload []byte) ([]byte, bool) {
	f, typ, n := protowire.ConsumeTag(payload)
	if n < 0 || f != 1 || typ != protowire.BytesType {
		return nil, false
	}
	b, m := protowire.ConsumeBytes(payload[n:])
	if m < 0 || n+m != len(payload) {
		return nil, false
	}
	return b, true
}

// eachField walks the fields of a message body, calling visit with each
// field's number, type and value (bytes for length-delimited fields, x for
// varints; nil and 0 otherwise). It stops, reporting false, on a malformed
// body or when visit returns false.
func eachField(b []byte, visit func(f protowire.Number, typ protowire.Type, v []byte, x uint64) bool) bool {
	for len(b) > 0 {
		f, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		default:
			n = protowire.ConsumeFieldValue(f, typ, b)
		}
		if n < 0 || !visit(f, typ, v, x) {
			return false
		}
		b = b[n:]
	}
	return true
}
