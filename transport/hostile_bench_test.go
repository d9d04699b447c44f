package transport

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// hostileBatch is a push frame body of size bytes that is nothing but empty
// envelopes: two bytes each.
func hostileBatch(size int) []byte {
	body := make([]byte, 0, size)
	for len(body)+2 <= size {
		body = protowire.AppendTag(body, 1, protowire.BytesType)
		body = protowire.AppendVarint(body, 0)
	}
	return body
}

// hostileFetch is a PullRequest body of about size bytes: a fetch request of
// empty ranges, two bytes each.
func hostileFetch(size int) []byte {
	var inner []byte
	for len(inner)+2 <= size-8 {
		inner = protowire.AppendTag(inner, 2, protowire.BytesType)
		inner = protowire.AppendVarint(inner, 0)
	}
	body := protowire.AppendTag(nil, 2, protowire.BytesType)
	return protowire.AppendBytes(body, inner)
}

// BenchmarkHostileDecode decodes 4 MiB frames of empty items, a push batch
// and a fetch request, as a receiver with the default caps does; and, for
// comparison, an honest batch of ten 1 KiB envelopes.
func BenchmarkHostileDecode(b *testing.B) {
	const size = 4 << 20
	b.Run("batch", func(b *testing.B) {
		body := hostileBatch(size)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			_, _ = decodeBatch(body, DefaultConfig().itemCaps())
		}
	})
	b.Run("honest-batch", func(b *testing.B) {
		batch := &wire.Batch{}
		for i := range 10 {
			batch.Envelopes = append(batch.Envelopes, batchOf(1<<10, byte(i)).Envelopes...)
		}
		body, err := proto.Marshal(batch)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			_, _ = decodeBatch(body, DefaultConfig().itemCaps())
		}
	})
	b.Run("fetch", func(b *testing.B) {
		body := hostileFetch(size)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			_ = (&Transport{caps: DefaultConfig().itemCaps()}).decode(body, new(wire.PullRequest))
		}
	})
}
