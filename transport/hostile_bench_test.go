package transport

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/internal/hostileframe"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// hostileBatch and hostileFetch are 4 MiB-class bodies of empty items.
var (
	hostileBatch = hostileframe.EmptyEnvelopes
	hostileFetch = hostileframe.EmptyRanges
)

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
