package transport

import (
	"math"
	"slices"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// decodeBatch decodes a push frame body the caller hands over. It first
// counts the batch's repeated fields against caps (countBatch), so a frame
// over them is refused with ErrTooManyItems before anything is allocated.
// Batches of the shape this version writes (envelopes of payload, signature
// and secret; tree control entries) are then decoded in place: their byte
// fields alias body instead of copying it, which matters for megabyte
// blocks. Anything else (unknown fields from a newer peer, repeated
// singular fields) takes the generic protobuf path, so the result is always
// what proto.Unmarshal would give.
//
// Aliasing means a kept envelope keeps its whole frame alive; the frame is
// at most MaxFrameSize.
func decodeBatch(body []byte, caps itemCaps) (*wire.Batch, error) {
	n, err := countBatch(body, caps)
	if err != nil {
		return nil, err
	}
	if b, ok := decodeBatchInPlace(body, n); ok {
		return b, nil
	}
	b := new(wire.Batch)
	if err := decodeBody(body, b); err != nil {
		return nil, err
	}
	return b, nil
}

// decodeBatchInPlace decodes a batch with n's counts of envelopes and
// control entries (from countBatch), allocating each kind in one slab.
func decodeBatchInPlace(body []byte, n batchCounts) (*wire.Batch, bool) {
	b := new(wire.Batch)
	var envs []wire.Envelope
	if n.envelopes > 0 {
		envs = make([]wire.Envelope, n.envelopes)
		b.Envelopes = make([]*wire.Envelope, 0, n.envelopes)
	}
	var ctrl []wire.TreeControl
	if n.control > 0 {
		ctrl = make([]wire.TreeControl, n.control)
		b.Control = make([]*wire.TreeControl, 0, n.control)
	}
	var chunks []wire.BlockChunk
	if n.chunks > 0 {
		chunks = make([]wire.BlockChunk, n.chunks)
		b.Chunks = make([]*wire.BlockChunk, 0, n.chunks)
	}
	for len(body) > 0 {
		num, typ, k := protowire.ConsumeTag(body)
		if k < 0 || typ != protowire.BytesType {
			return nil, false
		}
		v, m := protowire.ConsumeBytes(body[k:])
		if m < 0 {
			return nil, false
		}
		body = body[k+m:]
		switch {
		case num == 1 && len(b.Envelopes) < len(envs):
			env := &envs[len(b.Envelopes)]
			if !decodeEnvelopeInPlace(v, env) {
				return nil, false
			}
			b.Envelopes = append(b.Envelopes, env)
		case num == 2 && len(b.Control) < len(ctrl):
			tc := &ctrl[len(b.Control)]
			if !decodeTreeControlInPlace(v, tc) {
				return nil, false
			}
			b.Control = append(b.Control, tc)
		case num == 3 && len(b.Chunks) < len(chunks):
			c := &chunks[len(b.Chunks)]
			if !decodeBlockChunkInPlace(v, c) {
				return nil, false
			}
			b.Chunks = append(b.Chunks, c)
		default:
			// An unknown field, or more entries than counted (cannot
			// happen: countBatch counts exactly these fields).
			return nil, false
		}
	}
	return b, true
}

func decodeEnvelopeInPlace(body []byte, env *wire.Envelope) bool {
	return eachBytesField(body, 3, func(num protowire.Number, v []byte) bool {
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
}

func decodeSecretEnvelopeInPlace(body []byte) (*wire.SecretEnvelope, bool) {
	se := new(wire.SecretEnvelope)
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
	return se, true
}

// decodeBlockChunkInPlace decodes a chunk, its block hash and data aliasing
// body (capped). Each field at most once, with its declared type, and a
// UTF-8 channel; anything else sends the batch to the generic path.
func decodeBlockChunkInPlace(body []byte, c *wire.BlockChunk) bool {
	var seen [7]bool
	for len(body) > 0 {
		num, typ, k := protowire.ConsumeTag(body)
		if k < 0 || num < 1 || num > 6 || seen[num] {
			return false
		}
		seen[num] = true
		body = body[k:]
		if num == 6 { // relay
			x, m := protowire.ConsumeVarint(body)
			if typ != protowire.VarintType || m < 0 {
				return false
			}
			c.Relay = x != 0
			body = body[m:]
			continue
		}
		varint := num == 2 || num == 4
		if varint {
			if typ != protowire.VarintType {
				return false
			}
			x, m := protowire.ConsumeVarint(body)
			if m < 0 || (num == 4 && x > math.MaxUint32) {
				return false
			}
			if num == 2 {
				c.Number = x
			} else {
				c.Index = uint32(x)
			}
			body = body[m:]
			continue
		}
		if typ != protowire.BytesType {
			return false
		}
		v, m := protowire.ConsumeBytes(body)
		if m < 0 {
			return false
		}
		body = body[m:]
		switch num {
		case 1:
			if !utf8.Valid(v) {
				return false
			}
			c.Channel = string(v)
		case 3:
			c.BlockHash = v[:len(v):len(v)]
		case 5:
			c.Data = v[:len(v):len(v)]
		}
	}
	return true
}

// decodeTreeControlInPlace decodes a control entry, its root aliasing body.
// The number lists are taken packed (what this version writes) or unpacked,
// and repeated occurrences append, as in proto.Unmarshal; any other field,
// or a channel that is not UTF-8, sends the batch to the generic path.
func decodeTreeControlInPlace(body []byte, tc *wire.TreeControl) bool {
	for len(body) > 0 {
		num, typ, k := protowire.ConsumeTag(body)
		if k < 0 {
			return false
		}
		body = body[k:]
		var list *[]uint64
		switch num {
		case 3:
			list = &tc.Ihave
		case 4:
			list = &tc.Graft
		}
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(body)
			if m < 0 || !utf8.Valid(v) {
				return false
			}
			tc.Channel = string(v)
			body = body[m:]
		case num == 2 && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(body)
			if m < 0 {
				return false
			}
			tc.Root = v[:len(v):len(v)]
			body = body[m:]
		case list != nil && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(body)
			if m < 0 {
				return false
			}
			*list = slices.Grow(*list, countVarints(v))
			for len(v) > 0 {
				x, j := protowire.ConsumeVarint(v)
				if j < 0 {
					return false
				}
				*list = append(*list, x)
				v = v[j:]
			}
			body = body[m:]
		case list != nil && typ == protowire.VarintType:
			x, m := protowire.ConsumeVarint(body)
			if m < 0 {
				return false
			}
			*list = append(*list, x)
			body = body[m:]
		case num == 5 && typ == protowire.VarintType:
			x, m := protowire.ConsumeVarint(body)
			if m < 0 {
				return false
			}
			tc.Prune = protowire.DecodeBool(x)
			body = body[m:]
		default:
			return false
		}
	}
	return true
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
