package transport

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/transport/wire"
)

func TestFrameRoundTrip(t *testing.T) {
	// Sizes on both sides of the read-ahead buffer: small bodies are
	// returned in place, large ones through the body buffer.
	batches := []*wire.Batch{
		{},
		batchOf(1, 1),
		batchOf(readBufferSize-10, 2),
		batchOf(readBufferSize+10, 3),
		batchOf(100<<10, 4),
		batchOf(5, 5),
		batchOf(300<<10, 6),
	}
	var stream []byte
	for _, b := range batches {
		var err error
		if stream, err = AppendFrame(stream, b, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	scope := &fakeScope{}
	fr := newScopedFrameReader(bytes.NewReader(stream), 1<<20, scope)
	for i, want := range batches {
		var got wire.Batch
		if err := fr.ReadMsg(&got); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !proto.Equal(&got, want) {
			t.Fatalf("frame %d differs", i)
		}
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
	if scope.reserved < 300<<10 || scope.reserved > 1<<20 {
		t.Fatalf("reserved %d bytes for a 300 KiB body", scope.reserved)
	}
	fr.Release()
	if scope.reserved != 0 {
		t.Fatalf("%d bytes still reserved after Release", scope.reserved)
	}
}

func TestFrameReaderNextOwned(t *testing.T) {
	// Bodies on both sides of the read-ahead buffer, each filled with its
	// own byte, read with NextOwned and Next interleaved: every owned body
	// must still hold its bytes once all frames are read, the reader having
	// reused its buffers for the later ones.
	sizes := []int{0, 1, readBufferSize - 10, readBufferSize, readBufferSize + 1, 100 << 10, 5, 300 << 10, 64 << 10, 7}
	var stream []byte
	for i, n := range sizes {
		stream = protowire.AppendVarint(stream, uint64(n))
		stream = append(stream, bytes.Repeat([]byte{byte(i + 1)}, n)...)
	}
	scope := &fakeScope{}
	fr := newScopedFrameReader(bytes.NewReader(stream), 1<<20, scope)
	owned := make([][]byte, len(sizes))
	for i, n := range sizes {
		var body []byte
		var err error
		if i%3 == 2 {
			body, err = fr.Next() // a body in the reader's own buffers
		} else {
			body, err = fr.NextOwned()
			owned[i] = body
		}
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if len(body) != n || body == nil {
			t.Fatalf("frame %d: body of %d bytes (nil %v), want %d", i, len(body), body == nil, n)
		}
	}
	if _, err := fr.NextOwned(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
	for i, body := range owned {
		if body != nil && !bytes.Equal(body, bytes.Repeat([]byte{byte(i + 1)}, sizes[i])) {
			t.Fatalf("owned body %d was overwritten", i)
		}
	}
	if scope.reserved < 300<<10 || scope.reserved > 1<<20 {
		t.Fatalf("reserved %d bytes for a 300 KiB body", scope.reserved)
	}
	fr.Release()
	if scope.reserved != 0 {
		t.Fatalf("%d bytes still reserved after Release", scope.reserved)
	}
}

func TestAppendFrameRefusesOversized(t *testing.T) {
	b := batchOf(100, 1)
	prefix := []byte("keep")
	out, err := AppendFrame(prefix, b, proto.Size(b)-1)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("AppendFrame over the cap: %v, want ErrFrameTooLarge", err)
	}
	if !bytes.Equal(out, prefix) {
		t.Fatal("AppendFrame changed dst on error")
	}
	if _, err := AppendFrame(nil, b, proto.Size(b)); err != nil {
		t.Fatalf("AppendFrame at the cap: %v", err)
	}
}

func TestFrameReaderErrors(t *testing.T) {
	const maxSize = 100
	valid, err := AppendFrame(nil, batchOf(10, 1), maxSize)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		input []byte
		want  error
	}{
		{"empty stream", nil, io.EOF},
		{"prefix over the cap", protowire.AppendVarint(nil, maxSize+1), ErrFrameTooLarge},
		{"largest prefix", protowire.AppendVarint(nil, 1<<64-1), ErrFrameTooLarge},
		{"truncated prefix", []byte{0x80}, ErrMalformedFrame},
		{"prefix over 64 bits", bytes.Repeat([]byte{0xff}, 11), ErrMalformedFrame},
		{"tenth prefix byte too big", append(bytes.Repeat([]byte{0x80}, 9), 0x02), ErrMalformedFrame},
		{"truncated body", valid[:len(valid)-1], ErrMalformedFrame},
		{"not protobuf", append(protowire.AppendVarint(nil, 3), 0xff, 0xff, 0xff), ErrMalformedFrame},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := NewFrameReader(bytes.NewReader(tc.input), maxSize).ReadMsg(new(wire.Batch))
			if !errors.Is(err, tc.want) {
				t.Fatalf("ReadMsg: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestFrameReaderPassesStreamErrors(t *testing.T) {
	boom := errors.New("stream reset")
	fr := NewFrameReader(io.MultiReader(bytes.NewReader([]byte{0x05, 1, 2}), errReader{boom}), 100)
	if _, err := fr.Next(); !errors.Is(err, boom) || errors.Is(err, ErrMalformedFrame) {
		t.Fatalf("Next: %v, want the stream's error unclassified", err)
	}
}

func TestFrameReaderReservationFailure(t *testing.T) {
	frame, err := AppendFrame(nil, batchOf(64<<10, 1), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, owned := range []bool{false, true} {
		scope := &fakeScope{limit: 1 << 10}
		fr := newScopedFrameReader(bytes.NewReader(frame), 1<<20, scope)
		if _, err := fr.next(owned, nil); err == nil {
			t.Fatalf("owned %v: read a frame the scope could not hold", owned)
		}
		if scope.reserved != 0 {
			t.Fatalf("owned %v: %d bytes reserved after a failed reservation", owned, scope.reserved)
		}
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// fakeScope accounts reservations up to limit (0: unlimited).
type fakeScope struct {
	reserved, limit int
}

func (s *fakeScope) ReserveMemory(n int, _ uint8) error {
	if s.limit > 0 && s.reserved+n > s.limit {
		return errors.New("resource limit exceeded")
	}
	s.reserved += n
	return nil
}

func (s *fakeScope) ReleaseMemory(n int) { s.reserved -= n }
