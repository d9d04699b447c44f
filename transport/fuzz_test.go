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

// fuzzCaps are the count caps the fuzzed decoders run with, small so that
// every cap is reachable.
var fuzzCaps = itemCaps{batchEnvelopes: 8, batchControl: 4, controlNumbers: 8, pullRanges: 8, pullEnvelopes: 4}

// FuzzDecodeBatch checks the push decode path, which counts and then decodes
// in place, against proto.Unmarshal: it refuses exactly the batches over
// the caps, and otherwise gives the same batch.
func FuzzDecodeBatch(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		want := new(wire.Batch)
		wantErr := proto.Unmarshal(data, want)
		got, err := decodeBatch(bytes.Clone(data), fuzzCaps)
		if errors.Is(err, ErrTooManyItems) {
			if wantErr == nil && !overCaps(want, fuzzCaps) {
				t.Fatalf("refused a batch within the caps: %v", err)
			}
			return
		}
		if wantErr == nil && overCaps(want, fuzzCaps) {
			t.Fatal("accepted a batch over the caps")
		}
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

// FuzzDecodeTreeControl checks the in-place control entry decoder against
// proto.Unmarshal: what it decodes is what proto gives, and it declines
// (sending the batch to the generic path) only unknown fields or bytes
// proto rejects.
func FuzzDecodeTreeControl(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		want := new(wire.TreeControl)
		wantErr := proto.Unmarshal(data, want)
		got := new(wire.TreeControl)
		ok := decodeTreeControlInPlace(bytes.Clone(data), got)
		switch {
		case ok && wantErr != nil:
			t.Fatalf("decoded in place what proto.Unmarshal rejects: %v", wantErr)
		case ok && !proto.Equal(got, want):
			t.Fatalf("in place %v, proto.Unmarshal %v", got, want)
		case !ok && wantErr == nil && len(want.ProtoReflect().GetUnknown()) == 0:
			t.Fatal("declined an entry without unknown fields")
		}
		if ok && countControlNumbers(data) != len(got.Ihave)+len(got.Graft) {
			t.Fatalf("counted %d numbers, decoded %d", countControlNumbers(data), len(got.Ihave)+len(got.Graft))
		}
	})
}

// FuzzCountItems checks the counting pre-pass of each message that has one
// (kind: 0 Batch, 1 PullRequest, 2 PullResponse) against what
// proto.Unmarshal decodes: nothing it accepts is over a cap. It may refuse
// a message within them only when proto would fail on it, or for items of
// a oneof member a later member replaces (decoded, then dropped).
func FuzzCountItems(f *testing.F) {
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		var m proto.Message
		switch kind % 3 {
		case 0:
			m = new(wire.Batch)
		case 1:
			m = new(wire.PullRequest)
		case 2:
			m = new(wire.PullResponse)
		}
		err := checkCounts(data, m, fuzzCaps)
		if err != nil && !errors.Is(err, ErrTooManyItems) {
			t.Fatalf("unclassified error %v", err)
		}
		if proto.Unmarshal(data, m) != nil {
			return
		}
		over := overCaps(m, fuzzCaps)
		if err == nil && over {
			t.Fatalf("accepted %T over the caps", m)
		}
		if _, batch := m.(*wire.Batch); batch && err != nil && !over {
			t.Fatalf("refused a batch within the caps: %v", err)
		}
	})
}

// overCaps reports whether a decoded message has more items than caps allow.
func overCaps(m proto.Message, caps itemCaps) bool {
	switch m := m.(type) {
	case *wire.Batch:
		if len(m.GetEnvelopes()) > caps.batchEnvelopes || len(m.GetControl()) > caps.batchControl || len(m.GetChunks()) > caps.batchEnvelopes {
			return true
		}
		for _, c := range m.GetControl() {
			if len(c.GetIhave())+len(c.GetGraft()) > caps.controlNumbers {
				return true
			}
		}
	case *wire.PullRequest:
		return len(m.GetFetch().GetRanges())+len(m.GetChunks().GetRanges()) > caps.pullRanges
	case *wire.PullResponse:
		envs := len(m.GetFetch().GetBlocks()) + len(m.GetStateInfo().GetElements()) + len(m.GetMembership().GetAlive()) + len(m.GetChunks().GetChunks())
		return len(m.GetDigest().GetRanges()) > caps.pullRanges || envs > caps.pullEnvelopes
	}
	return false
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
