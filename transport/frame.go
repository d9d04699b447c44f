package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/libp2p/go-libp2p/core/network"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// A frame is a uvarint body length followed by the body, a marshalled
// protobuf message. It is the same wire format as go-msgio's varint framing
// and protodelim, so any of them can talk to fabgossip.

// frameMarshal reuses the size proto.Size cached just before, so a batch is
// walked once for its size and once to encode it.
var frameMarshal = proto.MarshalOptions{UseCachedSize: true}

// readBufferSize is the FrameReader's read-ahead buffer; bodies that fit in
// it are returned by Next without a copy, by NextOwned with one.
const readBufferSize = 8 << 10

// AppendFrame appends m to dst as one frame and returns the extended slice.
// It refuses, with ErrFrameTooLarge and dst unchanged, a body longer than
// maxSize bytes. The caller writes the result with a single Write.
func AppendFrame(dst []byte, m proto.Message, maxSize int) ([]byte, error) {
	size := proto.Size(m)
	if size > maxSize {
		return dst, fmt.Errorf("%w: body of %d bytes, max %d", ErrFrameTooLarge, size, maxSize)
	}
	start := len(dst)
	dst = protowire.AppendVarint(dst, uint64(size))
	dst = slices.Grow(dst, size)
	out, err := frameMarshal.MarshalAppend(dst, m)
	if err != nil {
		return dst[:start], fmt.Errorf("marshal frame: %w", err)
	}
	if len(out)-len(dst) != size {
		// The message changed between Size and Marshal: a caller modified
		// a batch after handing it over.
		return dst[:start], fmt.Errorf("marshal frame: message modified during send")
	}
	return out, nil
}

// memoryScope is the part of a libp2p resource scope the reader needs.
type memoryScope interface {
	ReserveMemory(size int, prio uint8) error
	ReleaseMemory(size int)
}

// FrameReader reads frames from a stream, refusing any body longer than its
// cap before reading it. It is not safe for concurrent use.
type FrameReader struct {
	r       *bufio.Reader
	max     int
	buf     []byte // holds Next's bodies larger than the read-ahead buffer
	discard int    // bytes of the previous body still in the read-ahead buffer

	// scope accounts the largest body read so far beyond the read-ahead
	// buffer: buf's capacity, or the size of the largest owned body. nil
	// means unaccounted.
	scope    memoryScope
	reserved int
}

// NewFrameReader returns a reader of frames from r whose bodies are at most
// maxSize bytes.
func NewFrameReader(r io.Reader, maxSize int) *FrameReader {
	return &FrameReader{r: bufio.NewReaderSize(r, readBufferSize), max: maxSize}
}

// newScopedFrameReader is NewFrameReader that reserves its bodies larger
// than the read-ahead buffer in the stream's resource scope before reading
// them: the largest so far stays reserved until Release.
func newScopedFrameReader(r io.Reader, maxSize int, scope memoryScope) *FrameReader {
	fr := NewFrameReader(r, maxSize)
	fr.scope = scope
	return fr
}

// Next returns the next frame's body, valid until the following call. It
// returns io.EOF when the stream ends cleanly between frames, an error
// wrapping ErrFrameTooLarge or ErrMalformedFrame for a bad frame, and the
// stream's own error (e.g. a reset) otherwise.
func (fr *FrameReader) Next() ([]byte, error) {
	return fr.next(false, nil)
}

// NextOwned is Next for a caller that keeps the body: the slice is the
// caller's, and the reader never writes to it again. A body that fits in
// the read-ahead buffer is copied out of it; a larger one is read straight
// into a slice of its own, one copy from the stream instead of two (into
// the body buffer, then out of it). It is reserved in the scope like
// Next's body buffer, though the reader does not hold it after returning.
func (fr *FrameReader) NextOwned() ([]byte, error) {
	return fr.next(true, nil)
}

// nextOwnedInto is NextOwned reusing spare, a body NextOwned returned that
// its caller no longer references, when the body fits it and fills at least
// half of it: a small body the caller keeps must not pin a large buffer.
func (fr *FrameReader) nextOwnedInto(spare []byte) ([]byte, error) {
	return fr.next(true, spare)
}

// fits reports whether a body of size bytes may reuse spare.
func fits(spare []byte, size int) bool {
	return cap(spare) > 0 && size <= cap(spare) && 2*size >= cap(spare)
}

func (fr *FrameReader) next(owned bool, spare []byte) ([]byte, error) {
	if fr.discard > 0 {
		// Cannot fail: the bytes are buffered (Peek returned them).
		_, _ = fr.r.Discard(fr.discard)
		fr.discard = 0
	}
	n, err := fr.readLength()
	if err != nil {
		return nil, err
	}
	if n > uint64(fr.max) {
		return nil, fmt.Errorf("%w: body of %d bytes, max %d", ErrFrameTooLarge, n, fr.max)
	}
	size := int(n)
	if size <= fr.r.Size() {
		body, err := fr.r.Peek(size)
		if err != nil {
			return nil, bodyError(err, size)
		}
		fr.discard = size
		if owned {
			if fits(spare, size) {
				return append(spare[:0], body...), nil
			}
			// Clone does not zero before copying, and keeps an empty
			// body non-nil.
			return bytes.Clone(body), nil
		}
		return body, nil
	}
	var body []byte
	if owned {
		if err := fr.reserve(size); err != nil {
			return nil, err
		}
		if fits(spare, size) {
			body = spare[:size]
		} else {
			body = make([]byte, size)
		}
	} else {
		if err := fr.grow(size); err != nil {
			return nil, err
		}
		body = fr.buf[:size]
	}
	// bufio copies out what it has buffered, then reads the rest straight
	// into body.
	if _, err := io.ReadFull(fr.r, body); err != nil {
		return nil, bodyError(err, size)
	}
	return body, nil
}

// ReadMsg reads the next frame into m. Decoding failures wrap
// ErrMalformedFrame; the other errors are Next's.
func (fr *FrameReader) ReadMsg(m proto.Message) error {
	body, err := fr.Next()
	if err != nil {
		return err
	}
	return decodeBody(body, m)
}

// Release drops the body buffer and returns its memory to the scope. The
// reader stays usable.
func (fr *FrameReader) Release() {
	fr.buf = nil
	if fr.scope != nil && fr.reserved > 0 {
		fr.scope.ReleaseMemory(fr.reserved)
	}
	fr.reserved = 0
}

// grow makes the body buffer hold at least size bytes.
func (fr *FrameReader) grow(size int) error {
	if size <= cap(fr.buf) {
		return nil
	}
	if err := fr.reserve(size); err != nil {
		return err
	}
	fr.buf = make([]byte, fr.reserved)
	return nil
}

// reserve makes the scope reservation cover a body of size bytes, doubling
// it (up to the cap) so that growing bodies reserve O(log) times. An
// unscoped reader only tracks the size.
func (fr *FrameReader) reserve(size int) error {
	if size <= fr.reserved {
		return nil
	}
	newSize := max(size, min(2*fr.reserved, fr.max))
	if fr.scope != nil {
		if err := fr.scope.ReserveMemory(newSize-fr.reserved, network.ReservationPriorityHigh); err != nil {
			return fmt.Errorf("reserve %d bytes for a frame: %w", newSize-fr.reserved, err)
		}
	}
	fr.reserved = newSize
	return nil
}

// decodeBody unmarshals one frame body, the single decode path of every
// protocol.
func decodeBody(body []byte, m proto.Message) error {
	if err := proto.Unmarshal(body, m); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformedFrame, err)
	}
	return nil
}

func bodyError(err error, size int) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated body (want %d bytes)", ErrMalformedFrame, size)
	}
	return err
}

// readLength reads the uvarint length prefix. A stream that ends before
// the first byte ends cleanly (io.EOF); one that ends inside the prefix, or a
// prefix longer than a uint64, is malformed.
func (fr *FrameReader) readLength() (uint64, error) {
	var x uint64
	for i := range binary.MaxVarintLen64 {
		b, err := fr.r.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				return 0, fmt.Errorf("%w: truncated length prefix", ErrMalformedFrame)
			}
			return 0, err
		}
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				break
			}
			return x | uint64(b)<<(7*i), nil
		}
		x |= uint64(b&0x7f) << (7 * i)
	}
	return 0, fmt.Errorf("%w: length prefix overflows 64 bits", ErrMalformedFrame)
}
