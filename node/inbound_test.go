package node

import (
	"crypto/rand"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/transport"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// TestPeekBlock: peekBlock reads what proto.Unmarshal reads from every block
// payload an encoder writes, and leaves anything it cannot read as exactly
// to the full decode.
func TestPeekBlock(t *testing.T) {
	encode := func(b *wire.Block) []byte {
		raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(&wire.Message{Content: &wire.Message_Block{Block: b}})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	for _, b := range []*wire.Block{
		{},
		{Channel: "ch", Number: 0, Data: []byte("x")},
		{Channel: "ch", Number: 1 << 40, PreviousHash: []byte{1}, DataHash: []byte{2}, Data: make([]byte, 1<<16),
			Publisher: []byte("p"), PublisherCertificate: &wire.Certificate{Body: []byte{3}}, PublishedAt: -1},
	} {
		payload := encode(b)
		ch, num, _, ok := peekBlock(payload)
		var m wire.Message
		if err := proto.Unmarshal(payload, &m); err != nil {
			t.Fatal(err)
		}
		if !ok || ch != m.GetBlock().GetChannel() || num != m.GetBlock().GetNumber() {
			t.Errorf("peekBlock of block %q %d = %q, %d, %v", b.GetChannel(), b.GetNumber(), ch, num, ok)
		}
	}

	field := func(num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), v)
	}
	number := func(n uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), n)
	}
	block := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return field(1, b)
	}
	one := block(field(1, []byte("ch")), number(1))
	si, err := proto.Marshal(&wire.Message{Content: &wire.Message_StateInfo{StateInfo: &wire.StateInfo{PeerId: []byte("p")}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, payload := range map[string][]byte{
		"two block fields (merged by a decode)": append(one, block(number(2))...),
		"the channel twice (last wins)":         block(field(1, []byte("a")), field(1, []byte("b"))),
		"the number twice (last wins)":          block(number(1), number(2)),
		"a channel that is not UTF-8":           block(field(1, []byte{0xff}), number(1)),
		"a channel of the wrong wire type":      block(protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1)),
		"a StateInfo":                           si,
		"a truncated block":                     one[:len(one)-1],
		"trailing bytes":                        append(append([]byte{}, one...), 0),
	} {
		if ch, num, _, ok := peekBlock(payload); ok {
			t.Errorf("%s: peekBlock = %q, %d, true; want false", name, ch, num)
		}
	}
}

// TestSignedBy: signedBy checks the signature over the payload bytes and the
// Secret's, without decoding the payload.
func TestSignedBy(t *testing.T) {
	key, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(payload []byte) []byte {
		sig, err := key.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	notAMessage := []byte{0xff, 0xff}
	secret, err := transport.SignSecret(key, &wire.Secret{})
	if err != nil {
		t.Fatal(err)
	}
	otherSecret, err := transport.SignSecret(other, &wire.Secret{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  *wire.Envelope
		want bool
	}{
		{"signed bytes that are no message", &wire.Envelope{Payload: notAMessage, Signature: sign(notAMessage)}, true},
		{"with a secret signed by the same key", &wire.Envelope{Payload: notAMessage, Signature: sign(notAMessage), Secret: secret}, true},
		{"with a secret signed by another key", &wire.Envelope{Payload: notAMessage, Signature: sign(notAMessage), Secret: otherSecret}, false},
		{"a changed payload", &wire.Envelope{Payload: []byte{0xff, 0xfe}, Signature: sign(notAMessage)}, false},
		{"a short signature", &wire.Envelope{Payload: notAMessage, Signature: sign(notAMessage)[:63]}, false},
		{"no signature", &wire.Envelope{Payload: notAMessage}, false},
	}
	for _, tt := range tests {
		if got := signedBy(tt.env, id); got != tt.want {
			t.Errorf("%s: signedBy = %v, want %v", tt.name, got, tt.want)
		}
	}
	if signedBy(tests[0].env, peer.ID("not a key")) {
		t.Error("signedBy accepted a peer ID that embeds no key")
	}
}
