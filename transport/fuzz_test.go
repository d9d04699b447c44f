package transport

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/ and run with every
// `go test`; `go test -fuzz=FuzzName` explores further.

// fuzzMaxFrame is the cap the fuzzed frame reader runs with, small so that
// "oversized" is reachable.
const fuzzMaxFrame = 1024

// FuzzFrameReader also reads data with NextOwned, in lockstep: same bodies,
// same errors, and every owned body intact at the end. The owned reader's
// stream yields one byte a Read, so its read-ahead buffer refills (and
// slides) under the bodies already returned. That buffer is larger than
// fuzzMaxFrame, so only NextOwned's small-body path runs here;
// TestFrameReaderNextOwned covers the large bodies.
func FuzzFrameReader(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := NewFrameReader(bytes.NewReader(data), fuzzMaxFrame)
		owner := NewFrameReader(iotest.OneByteReader(bytes.NewReader(data)), fuzzMaxFrame)
		var owned, copies [][]byte
		defer func() {
			for i := range owned {
				if !bytes.Equal(owned[i], copies[i]) {
					t.Errorf("owned body %d was overwritten", i)
				}
			}
		}()
		for range len(data) + 1 {
			body, err := fr.Next()
			ownedBody, ownedErr := owner.NextOwned()
			if (err == nil) != (ownedErr == nil) || (err != nil && err.Error() != ownedErr.Error()) {
				t.Fatalf("Next error %v, NextOwned error %v", err, ownedErr)
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				if !errors.Is(err, ErrMalformedFrame) && !errors.Is(err, ErrFrameTooLarge) {
					t.Fatalf("unclassified error %v", err)
				}
				return
			}
			if len(body) > fuzzMaxFrame {
				t.Fatalf("body of %d bytes over the cap", len(body))
			}
			if !bytes.Equal(body, ownedBody) {
				t.Fatal("Next and NextOwned bodies differ")
			}
			owned, copies = append(owned, ownedBody), append(copies, bytes.Clone(body))
			// Whatever decodes must survive a round trip through a frame.
			var b wire.Batch
			if decodeBody(body, &b) == nil {
				roundTripFrame(t, &b, new(wire.Batch))
			}
		}
		t.Fatal("more frames than bytes")
	})
}

func FuzzOpen(f *testing.F) {
	pub := testKey(f, 1).GetPublic()
	f.Fuzz(func(t *testing.T, data []byte) {
		var env wire.Envelope
		if decodeBody(data, &env) != nil {
			return
		}
		m, err := Open(&env, pub)
		if err != nil {
			if m != nil {
				t.Fatal("message returned with an error")
			}
			return
		}
		if m.GetContent() == nil {
			t.Fatal("opened a message without content")
		}
		if ok, _ := pub.Verify(env.GetPayload(), env.GetSignature()); !ok {
			t.Fatal("opened an envelope whose signature does not verify")
		}
		if _, err := OpenSecret(&env, pub); err != nil {
			t.Fatalf("Open accepted a secret that OpenSecret rejects: %v", err)
		}
	})
}

// FuzzDecodeBatch checks the push decode path, which decodes in place,
// against proto.Unmarshal.
func FuzzDecodeBatch(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		want := new(wire.Batch)
		wantErr := proto.Unmarshal(data, want)
		got, err := decodeBatch(bytes.Clone(data))
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("decodeBatch error %v, proto.Unmarshal error %v", err, wantErr)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformedFrame) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if !proto.Equal(got, want) {
			t.Fatal("decodeBatch and proto.Unmarshal disagree")
		}
		roundTripFrame(t, got, new(wire.Batch))
	})
}

func FuzzDecodeMessage(f *testing.F) {
	fuzzDecode(f, func() *wire.Message { return new(wire.Message) })
}
func FuzzDecodePullRequest(f *testing.F) {
	fuzzDecode(f, func() *wire.PullRequest { return new(wire.PullRequest) })
}
func FuzzDecodePullResponse(f *testing.F) {
	fuzzDecode(f, func() *wire.PullResponse { return new(wire.PullResponse) })
}
func FuzzDecodeHello(f *testing.F) { fuzzDecode(f, func() *wire.Hello { return new(wire.Hello) }) }

// fuzzDecode checks a decode path: arbitrary bytes never panic, and what
// decodes re-encodes to an equal message through a frame.
func fuzzDecode[M proto.Message](f *testing.F, fresh func() M) {
	f.Fuzz(func(t *testing.T, data []byte) {
		m := fresh()
		if err := decodeBody(data, m); err != nil {
			if !errors.Is(err, ErrMalformedFrame) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		roundTripFrame(t, m, fresh())
	})
}

func roundTripFrame(t *testing.T, m, into proto.Message) {
	t.Helper()
	frame, err := AppendFrame(nil, m, fuzzMaxFrame*4)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	if err := NewFrameReader(bytes.NewReader(frame), fuzzMaxFrame*4).ReadMsg(into); err != nil {
		t.Fatalf("re-decode: %v", err)
	}
	if !proto.Equal(m, into) {
		t.Fatal("round trip changed the message")
	}
}
