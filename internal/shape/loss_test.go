package shape

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// TestLossyStreamDropsWholeFrames: what a lossy stream passes on is exactly
// the frames drop kept, each intact, in order, whatever sizes the reader
// asks for; empty frames are never dropped.
func TestLossyStreamDropsWholeFrames(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var in bytes.Buffer
	var frames [][]byte
	for i := range 500 {
		size := rng.IntN(40 << 10)
		if i%50 == 0 {
			size = 0
		}
		f := make([]byte, size)
		for j := range f {
			f[j] = byte(i + j)
		}
		frames = append(frames, f)
		in.Write(binary.AppendUvarint(nil, uint64(size)))
		in.Write(f)
	}
	n := 0
	s := &lossyStream{r: bufio.NewReaderSize(&in, 4<<10), drop: func() bool { n++; return n%5 == 0 }}
	var out bytes.Buffer
	buf := make([]byte, 64<<10)
	for {
		m, err := s.Read(buf[:1+rng.IntN(len(buf))])
		out.Write(buf[:m])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var want [][]byte
	draws := 0
	for _, f := range frames {
		if len(f) > 0 {
			draws++
			if draws%5 == 0 {
				continue
			}
		}
		want = append(want, f)
	}
	r := bufio.NewReader(&out)
	for i, w := range want {
		size, err := binary.ReadUvarint(r)
		if err != nil {
			t.Fatalf("frame %d of %d: %v", i, len(want), err)
		}
		got := make([]byte, size)
		if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, w) {
			t.Fatalf("frame %d: %d bytes, want %d (err %v)", i, size, len(w), err)
		}
	}
	if r.Buffered() > 0 {
		t.Fatalf("%d bytes after the last kept frame", r.Buffered())
	}
	if draws != n {
		t.Fatalf("drop asked %d times for %d non-empty frames", n, draws)
	}
}
