// Package hostileframe builds the frame bodies a hostile peer sends to make
// a receiver allocate per item: nothing but empty repeated items, two bytes
// each. The transport's decoding benchmark and the hostile-peer suite
// (fabgossip hostile) send the same ones.
package hostileframe

import "google.golang.org/protobuf/encoding/protowire"

// EmptyEnvelopes is a Batch body of size bytes (rounded down to even) that
// is nothing but empty envelopes: at 4 MiB, 2 million of them.
func EmptyEnvelopes(size int) []byte {
	body := make([]byte, 0, size)
	for len(body)+2 <= size {
		body = protowire.AppendTag(body, 1, protowire.BytesType)
		body = protowire.AppendVarint(body, 0)
	}
	return body
}

// EmptyRanges is a PullRequest body of about size bytes: a fetch request
// of nothing but empty ranges.
func EmptyRanges(size int) []byte {
	var inner []byte
	for len(inner)+2 <= size-8 {
		inner = protowire.AppendTag(inner, 2, protowire.BytesType)
		inner = protowire.AppendVarint(inner, 0)
	}
	body := protowire.AppendTag(nil, 2, protowire.BytesType)
	return protowire.AppendBytes(body, inner)
}
