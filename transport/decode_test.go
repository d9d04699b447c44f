package transport

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// testCaps are the default caps.
var testCaps = DefaultConfig().itemCaps()

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// field appends a length-delimited field.
func field(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// varintField appends a varint field.
func varintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func TestDecodeBatch(t *testing.T) {
	full := &wire.Batch{
		Envelopes: []*wire.Envelope{
			{Payload: []byte("p1"), Signature: []byte("s1"), Secret: &wire.SecretEnvelope{Payload: []byte("sp"), Signature: []byte("ss")}},
			{},
			{Payload: []byte("p2")},
		},
		Control: []*wire.TreeControl{
			{Channel: "ch", Root: []byte("publisher"), Ihave: []uint64{1, 2, 1 << 40}, Graft: []uint64{7}, Prune: true},
			{},
			{Channel: "other", Graft: []uint64{0}},
		},
		Chunks: []*wire.BlockChunk{
			{Channel: "ch", Number: 3, BlockHash: []byte("hash"), Index: 7, Data: []byte("chunk data")},
			{Channel: "ch", Number: 3, BlockHash: []byte("hash"), Index: 8, Data: []byte("relayed"), Relay: true},
			{},
		},
	}
	fullBytes := mustMarshal(t, full)
	// A field this version does not know: an Envelope with field 9.
	unknown := field(nil, 1, varintField(nil, 9, 42))
	// A payload given twice: the last one wins, as in proto.Unmarshal.
	twice := field(nil, 1, field(field(nil, 1, []byte("first")), 1, []byte("last")))
	// Control numbers unpacked, packed in two runs, a channel and a prune
	// given twice, interleaved with envelopes.
	ctrl := varintField(nil, 3, 5)
	ctrl = field(ctrl, 1, []byte("a"))
	ctrl = field(ctrl, 3, protowire.AppendVarint(protowire.AppendVarint(nil, 6), 300))
	ctrl = varintField(ctrl, 4, 9)
	ctrl = field(ctrl, 4, protowire.AppendVarint(nil, 10))
	ctrl = varintField(ctrl, 5, 2)
	ctrl = varintField(ctrl, 5, 0)
	ctrl = field(ctrl, 1, []byte("b"))
	mixed := field(nil, 2, ctrl)
	mixed = field(mixed, 1, field(nil, 1, []byte("p")))
	mixed = field(mixed, 2, nil)
	// A control entry with a field this version does not know.
	ctrlUnknown := field(nil, 2, varintField(field(nil, 1, []byte("c")), 6, 1))
	// An envelope as a varint: an unknown field of the batch.
	wrongType := varintField(nil, 1, 3)
	// A chunk whose index is given twice, and one with an unknown field.
	chunkTwice := field(nil, 3, varintField(varintField(nil, 4, 1), 4, 2))
	chunkUnknown := field(nil, 3, varintField(nil, 9, 1))
	// A relay flag as bytes: the wrong wire type.
	relayBytes := field(nil, 3, field(nil, 6, []byte{1}))

	cases := []struct {
		name    string
		body    []byte
		inPlace bool
	}{
		{"known shape", fullBytes, true},
		{"empty batch", nil, true},
		{"unknown field", unknown, false},
		{"repeated singular field", twice, false},
		{"control unpacked, repeated, interleaved", mixed, true},
		{"control unknown field", ctrlUnknown, false},
		{"envelope with the wrong wire type", wrongType, false},
		{"chunk field repeated", chunkTwice, false},
		{"chunk unknown field", chunkUnknown, false},
		{"chunk relay with the wrong wire type", relayBytes, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := new(wire.Batch)
			if err := proto.Unmarshal(tc.body, want); err != nil {
				t.Fatal(err)
			}
			got, err := decodeBatch(tc.body, testCaps)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Fatalf("decodeBatch = %v, want %v", got, want)
			}
			n, err := countBatch(tc.body, testCaps)
			if err != nil {
				t.Fatal(err)
			}
			if n.envelopes != len(want.Envelopes) || n.control != len(want.Control) || n.chunks != len(want.Chunks) {
				t.Fatalf("counted %+v, decoded %d envelopes, %d control entries and %d chunks", n, len(want.Envelopes), len(want.Control), len(want.Chunks))
			}
			if _, ok := decodeBatchInPlace(tc.body, n); ok != tc.inPlace {
				t.Fatalf("decoded in place: %v, want %v", ok, tc.inPlace)
			}
		})
	}

	t.Run("control channel not UTF-8", func(t *testing.T) {
		body := field(nil, 2, field(nil, 1, []byte{0xff}))
		if _, err := decodeBatch(body, testCaps); !errors.Is(err, ErrMalformedFrame) {
			t.Fatalf("decodeBatch: %v, want ErrMalformedFrame", err)
		}
	})

	// In-place fields alias the body but cannot grow into it.
	got, err := decodeBatch(fullBytes, testCaps)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string][]byte{
		"payload": got.GetEnvelopes()[0].GetPayload(),
		"root":    got.GetControl()[0].GetRoot(),
		"chunk":   got.GetChunks()[0].GetData(),
		"hash":    got.GetChunks()[0].GetBlockHash(),
	} {
		if cap(p) != len(p) {
			t.Fatalf("aliased %s has spare capacity %d", name, cap(p)-len(p))
		}
		_ = append(p, 'x')
	}
	if again, _ := decodeBatch(fullBytes, testCaps); !proto.Equal(again, full) {
		t.Fatal("appending to an aliased field changed the frame")
	}
}

// repeatField is n copies of field num with value v.
func repeatField(n int, num protowire.Number, v []byte) []byte {
	var b []byte
	for range n {
		b = field(b, num, v)
	}
	return b
}

// packed is n varints of value 1.
func packed(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 1
	}
	return b
}

func TestCountCaps(t *testing.T) {
	caps := itemCaps{batchEnvelopes: 4, batchControl: 3, controlNumbers: 5, pullRanges: 6, pullEnvelopes: 2}
	fetch := func(ranges []byte) []byte { return field(nil, 2, ranges) } // PullRequest.fetch
	cases := []struct {
		name string
		m    proto.Message
		body []byte
		want string // "" for accepted, else in the error
	}{
		{"envelopes at the cap", new(wire.Batch), repeatField(4, 1, nil), ""},
		{"envelopes over", new(wire.Batch), repeatField(5, 1, nil), "Batch.envelopes has more than 4"},
		{"envelopes of the wrong wire type are not items", new(wire.Batch),
			append(repeatField(4, 1, nil), varintField(nil, 1, 0)...), ""},
		{"control at the cap", new(wire.Batch), repeatField(3, 2, nil), ""},
		{"control over", new(wire.Batch), repeatField(4, 2, nil), "Batch.control has more than 3"},
		{"control numbers packed at the cap", new(wire.Batch),
			field(nil, 2, field(field(nil, 3, packed(3)), 4, packed(2))), ""},
		{"control numbers packed over", new(wire.Batch),
			field(nil, 2, field(field(nil, 3, packed(3)), 4, packed(3))), "TreeControl.ihave+graft has 6, max 5"},
		{"control numbers unpacked over", new(wire.Batch),
			field(nil, 2, varintField(field(nil, 3, packed(5)), 4, 1)), "TreeControl.ihave+graft has 6, max 5"},
		{"fetch ranges at the cap", new(wire.PullRequest), fetch(repeatField(6, 2, nil)), ""},
		{"fetch ranges over", new(wire.PullRequest), fetch(repeatField(7, 2, nil)), "PullRequest ranges has more than 6"},
		{"fetch ranges over across merged fetches", new(wire.PullRequest),
			append(fetch(repeatField(4, 2, nil)), fetch(repeatField(3, 2, nil))...), "PullRequest ranges has more than 6"},
		{"chunk ranges at the cap", new(wire.PullRequest), field(nil, 5, repeatField(6, 4, nil)), ""},
		{"chunk ranges over", new(wire.PullRequest), field(nil, 5, repeatField(7, 4, nil)), "PullRequest ranges has more than 6"},
		{"chunks at the cap", new(wire.Batch), repeatField(4, 3, nil), ""},
		{"chunks over", new(wire.Batch), repeatField(5, 3, nil), "Batch.chunks has more than 4"},
		{"chunk response over", new(wire.PullResponse), field(nil, 5, repeatField(3, 1, nil)), "envelopes has more than 2"},
		{"digest ranges over", new(wire.PullResponse), field(nil, 1, repeatField(7, 2, nil)), "Digest.ranges has more than 6"},
		{"fetch blocks over", new(wire.PullResponse), field(nil, 2, repeatField(3, 1, nil)), "envelopes has more than 2"},
		{"state info elements over", new(wire.PullResponse), field(nil, 3, repeatField(3, 1, nil)), "envelopes has more than 2"},
		{"membership alive over", new(wire.PullResponse), field(nil, 4, repeatField(3, 1, nil)), "envelopes has more than 2"},
		{"envelopes over across oneof members", new(wire.PullResponse),
			append(field(nil, 2, repeatField(2, 1, nil)), field(nil, 4, repeatField(1, 1, nil))...), "envelopes has more than 2"},
		{"response at the cap", new(wire.PullResponse), field(nil, 4, repeatField(2, 1, nil)), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkCounts(tc.body, tc.m, caps)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if err := decodeBody(tc.body, tc.m); err != nil {
					t.Fatalf("the accepted body does not decode: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrTooManyItems) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("checkCounts = %v, want ErrTooManyItems with %q", err, tc.want)
			}
			if kind, _ := classify(err); kind != ErrorTooManyItems {
				t.Fatalf("classified as %s", kind)
			}
		})
	}
}

// TestHostileFramesRefused: the frames of BenchmarkHostileDecode, 4 MiB of
// empty items, are refused by the defaults without allocating per item.
func TestHostileFramesRefused(t *testing.T) {
	const size = 4 << 20
	batch, fetch := hostileBatch(size), hostileFetch(size)
	allocs := testing.AllocsPerRun(3, func() {
		if _, err := decodeBatch(batch, testCaps); !errors.Is(err, ErrTooManyItems) {
			t.Fatalf("hostile batch: %v", err)
		}
		if err := checkCounts(fetch, new(wire.PullRequest), testCaps); !errors.Is(err, ErrTooManyItems) {
			t.Fatalf("hostile fetch: %v", err)
		}
	})
	// A handful (the error values; a few more under -race), against two
	// million per frame when decoded: anything per item would be over 1024.
	if allocs > 64 {
		t.Fatalf("%v allocations to refuse the hostile frames", allocs)
	}
}
