package transport

import (
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// decodeBatch decodes a push frame body the caller hands over. Batches of the
// shape this version writes (envelopes of payload, signature and secret)
// are decoded in place: their byte fields alias body instead of copying
// it, which matters for megabyte blocks. Anything else (unknown fields from
// a newer peer, repeated singular fields) takes the generic protobuf path,
// so the result is always what proto.Unmarshal would give.
//
// Aliasing means a kept envelope keeps its whole frame alive; the frame is
// at most MaxFrameSize.
func decodeBatch(body []byte) (*wire.Batch, error) {
	if b, ok := decodeBatchInPlace(body); ok {
		return b, nil
	}
	b := new(wire.Batch)
	if err := decodeBody(body, b); err != nil {
		return nil, err
	}
	return b, nil
}

func decodeBatchInPlace(body []byte) (*wire.Batch, bool) {
	b := new(wire.Batch)
	for len(body) > 0 {
		v, rest, ok := consumeBytesField(body, 1)
		if !ok {
			return nil, false
		}
		body = rest
		env, ok := decodeEnvelopeInPlace(v)
		if !ok {
			return nil, false
		}
		b.Envelopes = append(b.Envelopes, env)
	}
	return b, true
}

func decodeEnvelopeInPlace(body []byte) (*wire.Envelope, bool) {
	var env wire.Envelope
	ok := eachBytesField(body, 3, func(num protowire.Number, v []byte) bool {
		switch num {
		case 1:
			env.Payload = v
		case 2:
			env.Signature = v
		case 3:
			se, ok := decodeSecretEnvelopeInPlace(v)
			if !ok {
				return false
			}
			env.Secret = se
		}
		return true
	})
	if !ok {
		return nil, false
	}
	return &env, true
}

func decodeSecretEnvelopeInPlace(body []byte) (*wire.SecretEnvelope, bool) {
	var se wire.SecretEnvelope
	ok := eachBytesField(body, 2, func(num protowire.Number, v []byte) bool {
		if num == 1 {
			se.Payload = v
		} else {
			se.Signature = v
		}
		return true
	})
	if !ok {
		return nil, false
	}
	return &se, true
}

// eachBytesField walks a message made only of length-delimited fields
// numbered 1 to last, each at most once, calling set with each value (capped
// so an append cannot write into the frame). It reports false for anything
// else, or when set does; the caller then takes the generic protobuf path.
func eachBytesField(body []byte, last protowire.Number, set func(num protowire.Number, v []byte) bool) bool {
	var seen [8]bool
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 || typ != protowire.BytesType || num < 1 || num > last || seen[num] {
			return false
		}
		seen[num] = true
		v, m := protowire.ConsumeBytes(body[n:])
		if m < 0 {
			return false
		}
		body = body[n+m:]
		if !set(num, v[:len(v):len(v)]) {
			return false
		}
	}
	return true
}

// consumeBytesField reads one length-delimited field numbered num.
func consumeBytesField(b []byte, num protowire.Number) (v, rest []byte, ok bool) {
	got, typ, n := protowire.ConsumeTag(b)
	if n < 0 || got != num || typ != protowire.BytesType {
		return nil, nil, false
	}
	v, m := protowire.ConsumeBytes(b[n:])
	if m < 0 {
		return nil, nil, false
	}
	return v, b[n+m:], true
}
