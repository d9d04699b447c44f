package store

import (
	"bytes"
	"errors"
	"testing"
)

func TestBlockRecordRoundTrip(t *testing.T) {
	cases := []struct {
		name      string
		ch        string
		number    uint64
		hash, env []byte
	}{
		{"smallest", "c", 0, []byte{1}, []byte{2}},
		{"typical", "mychannel", 41, bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{9}, 4096)},
		{"largest hash", "c", 1<<64 - 2, bytes.Repeat([]byte{3}, MaxHashSize), []byte("envelope")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := encodeBlock(tc.ch, tc.number, tc.hash, tc.env)
			hash, env, err := decodeBlock(tc.ch, tc.number, rec)
			if err != nil || !bytes.Equal(hash, tc.hash) || !bytes.Equal(env, tc.env) {
				t.Fatalf("decode(encode) = %x, %d bytes, %v", hash, len(env), err)
			}
			// The same bytes under another key or channel fail the checksum.
			if _, _, err := decodeBlock(tc.ch, tc.number+1, rec); !errors.Is(err, ErrCorrupt) {
				t.Errorf("record read under the next number: %v; want ErrCorrupt", err)
			}
			if _, _, err := decodeBlock(tc.ch+"x", tc.number, rec); !errors.Is(err, ErrCorrupt) {
				t.Errorf("record read under another channel: %v; want ErrCorrupt", err)
			}
			for i := range rec {
				bad := bytes.Clone(rec)
				bad[i] ^= 0x10
				if _, _, err := decodeBlock(tc.ch, tc.number, bad); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("bit flip at byte %d: %v; want ErrCorrupt", i, err)
				}
			}
		})
	}
}

func TestStateRecordRoundTrip(t *testing.T) {
	for _, st := range []ChannelState{{}, {Joined: true}, {Left: true}, {Joined: true, Left: true}} {
		rec := encodeState("c", st)
		if got, err := decodeState("c", rec); got != st || err != nil {
			t.Errorf("decode(encode(%+v)) = %+v, %v", st, got, err)
		}
		if _, err := decodeState("d", rec); !errors.Is(err, ErrCorrupt) {
			t.Errorf("state of c read as d: %v; want ErrCorrupt", err)
		}
	}
}

// FuzzDecodeBlock: no input panics the decoder, and whatever it accepts is
// exactly what encodeBlock writes for the decoded fields.
func FuzzDecodeBlock(f *testing.F) {
	f.Add("c", uint64(0), encodeBlock("c", 0, []byte{1}, []byte{2}))
	f.Add("mychannel", uint64(7), encodeBlock("mychannel", 7, bytes.Repeat([]byte{5}, 32), []byte("an envelope")))
	f.Add("c", uint64(1), []byte{recordVersion, 0, 0, 0, 0, 200, 1})
	f.Add("c", uint64(1), []byte{})
	f.Fuzz(func(t *testing.T, ch string, number uint64, rec []byte) {
		hash, env, err := decodeBlock(ch, number, rec)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if len(hash) == 0 || len(hash) > MaxHashSize || len(env) == 0 || len(env) > MaxEnvelopeSize {
			t.Fatalf("accepted hash of %d and envelope of %d bytes", len(hash), len(env))
		}
		if again := encodeBlock(ch, number, hash, env); !bytes.Equal(again, rec) {
			t.Fatalf("accepted record %x re-encodes as %x", rec, again)
		}
	})
}

// FuzzDecodeState: no input panics the decoder, and whatever it accepts
// re-encodes to the same bytes.
func FuzzDecodeState(f *testing.F) {
	f.Add("c", encodeState("c", ChannelState{Joined: true}))
	f.Add("c", []byte{recordVersion, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, ch string, rec []byte) {
		st, err := decodeState(ch, rec)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if again := encodeState(ch, st); !bytes.Equal(again, rec) {
			t.Fatalf("accepted record %x re-encodes as %x", rec, again)
		}
	})
}
