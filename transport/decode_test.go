package transport

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/transport/wire"
)

func TestDecodeBatch(t *testing.T) {
	full := &wire.Batch{Envelopes: []*wire.Envelope{
		{Payload: []byte("p1"), Signature: []byte("s1"), Secret: &wire.SecretEnvelope{Payload: []byte("sp"), Signature: []byte("ss")}},
		{},
		{Payload: []byte("p2")},
	}}
	fullBytes, err := proto.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	// A field this version does not know: an Envelope with field 9.
	unknown := protowire.AppendTag(nil, 1, protowire.BytesType)
	inner := protowire.AppendTag(nil, 9, protowire.VarintType)
	inner = protowire.AppendVarint(inner, 42)
	unknown = protowire.AppendBytes(unknown, inner)
	// A payload given twice: the last one wins, as in proto.Unmarshal.
	twice := protowire.AppendTag(nil, 1, protowire.BytesType)
	env := protowire.AppendTag(nil, 1, protowire.BytesType)
	env = protowire.AppendBytes(env, []byte("first"))
	env = protowire.AppendTag(env, 1, protowire.BytesType)
	env = protowire.AppendBytes(env, []byte("last"))
	twice = protowire.AppendBytes(twice, env)

	cases := []struct {
		name    string
		body    []byte
		inPlace bool
	}{
		{"known shape", fullBytes, true},
		{"empty batch", nil, true},
		{"unknown field", unknown, false},
		{"repeated singular field", twice, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := new(wire.Batch)
			if err := proto.Unmarshal(tc.body, want); err != nil {
				t.Fatal(err)
			}
			got, err := decodeBatch(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Fatalf("decodeBatch = %v, want %v", got, want)
			}
			if _, ok := decodeBatchInPlace(tc.body); ok != tc.inPlace {
				t.Fatalf("decoded in place: %v, want %v", ok, tc.inPlace)
			}
		})
	}

	// In-place fields alias the body but cannot grow into it.
	got, err := decodeBatch(fullBytes)
	if err != nil {
		t.Fatal(err)
	}
	p := got.GetEnvelopes()[0].GetPayload()
	if cap(p) != len(p) {
		t.Fatalf("aliased payload has spare capacity %d", cap(p)-len(p))
	}
	_ = append(p, 'x')
	if again, _ := decodeBatch(fullBytes); !proto.Equal(again, full) {
		t.Fatal("appending to a payload changed the frame")
	}
}
