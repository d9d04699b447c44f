package transport

import (
	"bytes"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// TestLendingPushHandler: batches the handler gives back are read over by
// the next frame, and those it keeps are never touched again. The sender
// alternates two payload sizes and tags; the handler keeps every third
// batch and checks them all at the end, so a buffer reused while kept would
// show another frame's bytes (and, under -race, a write racing the check).
func TestLendingPushHandler(t *testing.T) {
	hs := newHosts(t, "mocknet", 2)
	cfg := DefaultConfig()
	const frames = 60
	type keptBatch struct {
		tag byte
		b   *wire.Batch
	}
	kept := make(chan keptBatch, frames)
	seen := make(chan struct{}, frames)
	var lent, reused int
	var last []byte // the previous given-back payload's backing array
	handler := func(_ peer.ID, b *wire.Batch) bool {
		defer func() { seen <- struct{}{} }()
		p := b.GetEnvelopes()[0].GetPayload()
		if last != nil && &p[0] == &last[0] {
			reused++
		}
		last = nil
		if p[0]%3 == 0 {
			kept <- keptBatch{p[0], b}
			return true
		}
		lent++
		last = p
		return false
	}
	tr := newTransport(t, hs[0], cfg)
	newTransport(t, hs[1], cfg, WithLendingPushHandler(handler))
	for i := range frames {
		size := 64 << 10 // beyond the read-ahead buffer, read straight into the body
		if i%2 == 1 {
			size = 60 << 10 // fits the previous body, so may reuse it
		}
		if err := tr.Send(hs[1].ID(), batchOf(size, byte(i))); err != nil {
			t.Fatal(err)
		}
		recv(t, seen, "the batch handled") // one at a time: the queue never fills
	}
	var got []keptBatch
	for len(got) < frames/3 {
		got = append(got, recv(t, kept, "a kept batch"))
	}
	for _, k := range got {
		env := k.b.GetEnvelopes()[0]
		if !bytes.Equal(env.GetPayload(), bytes.Repeat([]byte{k.tag}, len(env.GetPayload()))) || !bytes.Equal(env.GetSignature(), []byte{k.tag}) {
			t.Fatalf("kept batch %d was overwritten", k.tag)
		}
	}
	if reused == 0 {
		t.Fatalf("%d batches given back, none of their buffers reused", lent)
	}
}

func TestNextOwnedIntoFits(t *testing.T) {
	for _, c := range []struct {
		spare, size int
		reuse       bool
	}{
		{0, 100, false},
		{0, 0, false}, // an empty body stays non-nil
		{100, 100, true},
		{100, 50, true},
		{100, 49, false}, // a small body must not pin a large buffer
		{100, 101, false},
	} {
		if got := fits(make([]byte, c.spare), c.size); got != c.reuse {
			t.Errorf("fits(cap %d, %d) = %v, want %v", c.spare, c.size, got, c.reuse)
		}
	}
}
