package node

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// Path says how a block reached this peer.
type Path uint8

const (
	// ViaPush is a block received on the push protocol.
	ViaPush Path = iota + 1
	// ViaPull is a block received in a pull response.
	ViaPull
	// ViaPublish is a block this peer published.
	ViaPublish
)

func (p Path) String() string {
	switch p {
	case ViaPush:
		return "push"
	case ViaPull:
		return "pull"
	case ViaPublish:
		return "publish"
	}
	return "unknown"
}

// Tracer observes a node. Methods are called synchronously from the node's
// goroutines, sometimes under its lock: they must be fast and must not call
// back into the node. Embed NopTracer to implement only some methods.
type Tracer interface {
	// Received is called for every envelope that arrives from from, by push
	// or in a pull or hello response, before any check. env is valid only
	// during the call (a pushed frame's memory may be reused for the next
	// one): a tracer that keeps it must clone it (proto.Clone).
	Received(from peer.ID, env *wire.Envelope)
	// BlockAccepted is called when a block first passes every check; for a
	// chunked block that is its header, so Data is nil (the chunks follow).
	BlockAccepted(b Block, from peer.ID, via Path)
	// BlockDelivered is called when a block is delivered in order.
	BlockDelivered(b Block)
	// Dropped is called for every message refused, with its kind and why.
	Dropped(kind, reason string, from peer.ID)
	// BatchSent is called for every push frame handed to the transport.
	BatchSent(to peer.ID, b *wire.Batch)
}

// ChunkTracer is a Tracer that also sees chunks of chunked blocks: a
// tracer that implements it is called for every chunk that arrives from
// from, by push or pull, before any check, with the channel it names and
// its data size.
type ChunkTracer interface {
	ChunkReceived(from peer.ID, channel string, size int)
}

// CompletionTracer is a Tracer that is also told when a chunked block's data
// is whole: BlockAccepted sees its header, before any chunk, so a tracer that
// measures when a block's data arrived takes this call for chunked blocks
// (Block.Chunked). It is called once per block, when
// its last chunk checks out; from sent that chunk, and via says whether it
// came by push (ViaPush) or by repair (ViaPull).
type CompletionTracer interface {
	BlockCompleted(b Block, from peer.ID, via Path)
}

// NopTracer implements Tracer with methods that do nothing; embed it to
// implement only some.
type NopTracer struct{}

func (NopTracer) Received(peer.ID, *wire.Envelope)   {}
func (NopTracer) BlockAccepted(Block, peer.ID, Path) {}
func (NopTracer) BlockDelivered(Block)               {}
func (NopTracer) Dropped(string, string, peer.ID)    {}
func (NopTracer) BatchSent(peer.ID, *wire.Batch)     {}

// tracerDispatch calls every tracer in turn; with none it does nothing, so
// the node never checks for a nil tracer.
type tracerDispatch []Tracer

func (d tracerDispatch) Received(from peer.ID, env *wire.Envelope) {
	for _, t := range d {
		t.Received(from, env)
	}
}

func (d tracerDispatch) BlockAccepted(b Block, from peer.ID, via Path) {
	for _, t := range d {
		t.BlockAccepted(b, from, via)
	}
}

func (d tracerDispatch) BlockDelivered(b Block) {
	for _, t := range d {
		t.BlockDelivered(b)
	}
}

func (d tracerDispatch) Dropped(kind, reason string, from peer.ID) {
	for _, t := range d {
		t.Dropped(kind, reason, from)
	}
}

func (d tracerDispatch) BatchSent(to peer.ID, b *wire.Batch) {
	for _, t := range d {
		t.BatchSent(to, b)
	}
}

// ChunkReceived calls every tracer that is a ChunkTracer.
func (d tracerDispatch) ChunkReceived(from peer.ID, channel string, size int) {
	for _, t := range d {
		if ct, ok := t.(ChunkTracer); ok {
			ct.ChunkReceived(from, channel, size)
		}
	}
}

// BlockCompleted calls every tracer that is a CompletionTracer.
func (d tracerDispatch) BlockCompleted(b Block, from peer.ID, via Path) {
	for _, t := range d {
		if ct, ok := t.(CompletionTracer); ok {
			ct.BlockCompleted(b, from, via)
		}
	}
}
