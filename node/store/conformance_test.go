package store_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fabgossip/fabgossip/node/store"
)

// implementations are the stores the conformance suite runs against: every
// test below holds for each of them.
var implementations = []struct {
	name string
	open func(t *testing.T) store.Store
}{
	{"Memory", func(t *testing.T) store.Store { return store.NewMemory() }},
	{"Bolt", func(t *testing.T) store.Store { return openBolt(t, t.TempDir()) }},
	{"BoltNoSync", func(t *testing.T) store.Store { return openBolt(t, t.TempDir(), store.WithNoSync()) }},
}

// openBolt opens a Bolt store in dir and closes it when the test ends.
func openBolt(t testing.TB, dir string, opts ...store.Option) *store.Bolt {
	t.Helper()
	s, err := store.Open(dir, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// testEnv is the deterministic envelope of block number of the given size,
// so a reader can check content without remembering it.
func testEnv(number uint64, size int) []byte {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], number)
	binary.LittleEndian.PutUint64(seed[8:], uint64(size))
	b := make([]byte, size)
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

// testHash stands in for BlockHash.
func testHash(env []byte) []byte {
	h := sha256.Sum256(env)
	return h[:]
}

// testBlocks returns blocks first..first+n-1 with envelopes of the given size.
func testBlocks(first uint64, n, size int) []store.Block {
	bs := make([]store.Block, n)
	for i := range bs {
		num := first + uint64(i)
		env := testEnv(num, size)
		bs[i] = store.Block{Number: num, Hash: testHash(env), Envelope: env}
	}
	return bs
}

// appendN appends blocks 0..n-1 of ch one by one.
func appendN(t testing.TB, s store.Store, ch string, n, size int) []store.Block {
	t.Helper()
	bs := testBlocks(0, n, size)
	for _, b := range bs {
		if err := s.Append(ch, b.Number, b.Hash, b.Envelope); err != nil {
			t.Fatalf("Append(%q, %d): %v", ch, b.Number, err)
		}
	}
	return bs
}

// rangeNumbers runs Range and returns the numbers passed to f, checking each
// envelope against testEnv.
func rangeNumbers(t *testing.T, s store.Store, ch string, from uint64, maxCount, maxBytes int, stopAfter int) ([]uint64, error) {
	t.Helper()
	var got []uint64
	err := s.Range(ch, from, maxCount, maxBytes, func(n uint64, env []byte) bool {
		if want := testEnv(n, len(env)); !bytes.Equal(env, want) {
			t.Errorf("Range passed block %d with wrong content", n)
		}
		got = append(got, n)
		return stopAfter <= 0 || len(got) < stopAfter
	})
	return got, err
}

func forEachStore(t *testing.T, test func(t *testing.T, s store.Store)) {
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) {
			test(t, impl.open(t))
		})
	}
}

func TestEmptyChannel(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store.Store) {
		if h, err := s.Height("c"); h != 0 || err != nil {
			t.Errorf("Height = %d, %v; want 0, nil", h, err)
		}
		if h, err := s.LastHash("c"); h != nil || err != nil {
			t.Errorf("LastHash = %x, %v; want nil, nil", h, err)
		}
		if _, err := s.Get("c", 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get = %v; want ErrNotFound", err)
		}
		got, err := rangeNumbers(t, s, "c", 0, 10, 1<<20, 0)
		if len(got) != 0 || err != nil {
			t.Errorf("Range = %v, %v; want nothing", got, err)
		}
		if st, err := s.ChannelStates(); len(st) != 0 || err != nil {
			t.Errorf("ChannelStates = %v, %v; want empty", st, err)
		}
		if err := s.AppendBatch("c", nil); err != nil {
			t.Errorf("AppendBatch(empty) = %v", err)
		}
	})
}

func TestAppendAndRead(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store.Store) {
		bs := appendN(t, s, "c", 5, 100)
		if err := s.AppendBatch("c", testBlocks(5, 10, 3000)); err != nil {
			t.Fatalf("AppendBatch: %v", err)
		}
		bs = append(bs, testBlocks(5, 10, 3000)...)
		if h, err := s.Height("c"); h != 15 || err != nil {
			t.Fatalf("Height = %d, %v; want 15", h, err)
		}
		if h, err := s.LastHash("c"); !bytes.Equal(h, bs[14].Hash) || err != nil {
			t.Errorf("LastHash = %x, %v; want %x", h, err, bs[14].Hash)
		}
		for _, b := range bs {
			env, err := s.Get("c", b.Number)
			if err != nil || !bytes.Equal(env, b.Envelope) {
				t.Errorf("Get(%d) = %d bytes, %v; want the appended envelope", b.Number, len(env), err)
			}
		}
		if _, err := s.Get("c", 15); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(15) = %v; want ErrNotFound", err)
		}
		if _, err := s.Get("other", 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(other channel) = %v; want ErrNotFound", err)
		}
	})
}

func TestOutOfOrderRefused(t *testing.T) {
	cases := []struct {
		name  string
		batch []store.Block
	}{
		{"duplicate of the last", testBlocks(2, 1, 10)},
		{"replay from zero", testBlocks(0, 1, 10)},
		{"gap of one", testBlocks(4, 1, 10)},
		{"far ahead", testBlocks(1<<40, 1, 10)},
		{"batch starting early", testBlocks(2, 3, 10)},
		{"batch starting late", testBlocks(4, 3, 10)},
		{"batch with a gap", append(testBlocks(3, 2, 10), testBlocks(6, 1, 10)...)},
		{"batch going back", append(testBlocks(3, 2, 10), testBlocks(3, 1, 10)...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, s store.Store) {
				bs := appendN(t, s, "c", 3, 10)
				err := s.AppendBatch("c", tc.batch)
				if !errors.Is(err, store.ErrOutOfOrder) {
					t.Fatalf("AppendBatch = %v; want ErrOutOfOrder", err)
				}
				if len(tc.batch) == 1 {
					b := tc.batch[0]
					if err := s.Append("c", b.Number, b.Hash, b.Envelope); !errors.Is(err, store.ErrOutOfOrder) {
						t.Fatalf("Append = %v; want ErrOutOfOrder", err)
					}
				}
				if h, _ := s.Height("c"); h != 3 {
					t.Errorf("Height after refusal = %d; want 3", h)
				}
				if h, _ := s.LastHash("c"); !bytes.Equal(h, bs[2].Hash) {
					t.Errorf("LastHash changed by a refused append")
				}
				if _, err := s.Get("c", 3); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("a refused batch left block 3 behind: %v", err)
				}
			})
		})
	}
}

func TestInvalidArguments(t *testing.T) {
	long := strings.Repeat("x", store.MaxChannelName+1)
	ok := testBlocks(0, 1, 10)[0]
	noop := func(uint64, []byte) bool { return true }
	cases := []struct {
		name string
		call func(s store.Store) error
	}{
		{"Append empty channel", func(s store.Store) error { return s.Append("", 0, ok.Hash, ok.Envelope) }},
		{"Append long channel", func(s store.Store) error { return s.Append(long, 0, ok.Hash, ok.Envelope) }},
		{"Append empty hash", func(s store.Store) error { return s.Append("c", 0, nil, ok.Envelope) }},
		{"Append long hash", func(s store.Store) error { return s.Append("c", 0, make([]byte, store.MaxHashSize+1), ok.Envelope) }},
		{"Append empty envelope", func(s store.Store) error { return s.Append("c", 0, ok.Hash, []byte{}) }},
		{"AppendBatch one bad block", func(s store.Store) error {
			return s.AppendBatch("c", []store.Block{ok, {Number: 1, Hash: ok.Hash}})
		}},
		{"Height empty channel", func(s store.Store) error { _, err := s.Height(""); return err }},
		{"LastHash long channel", func(s store.Store) error { _, err := s.LastHash(long); return err }},
		{"Get empty channel", func(s store.Store) error { _, err := s.Get("", 0); return err }},
		{"Range empty channel", func(s store.Store) error { return s.Range("", 0, 1, 1, noop) }},
		{"Range zero count", func(s store.Store) error { return s.Range("c", 0, 0, 1, noop) }},
		{"Range negative bytes", func(s store.Store) error { return s.Range("c", 0, 1, -1, noop) }},
		{"Range nil function", func(s store.Store) error { return s.Range("c", 0, 1, 1, nil) }},
		{"PutChannelState long channel", func(s store.Store) error { return s.PutChannelState(long, store.ChannelState{}) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, s store.Store) {
				if err := tc.call(s); !errors.Is(err, store.ErrInvalid) {
					t.Fatalf("got %v; want ErrInvalid", err)
				}
				if h, _ := s.Height("c"); h != 0 {
					t.Errorf("an invalid call stored blocks: height %d", h)
				}
			})
		})
	}
	t.Run("oversized envelope", func(t *testing.T) {
		env := make([]byte, store.MaxEnvelopeSize+1)
		forEachStore(t, func(t *testing.T, s store.Store) {
			if err := s.Append("c", 0, ok.Hash, env); !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("got %v; want ErrInvalid", err)
			}
		})
	})
}

func TestRangeBounds(t *testing.T) {
	// Blocks 0..9 of 100 bytes each, and block 10 of 1000 bytes.
	cases := []struct {
		name      string
		from      uint64
		maxCount  int
		maxBytes  int
		stopAfter int // f returns false after this many blocks; 0 never
		want      []uint64
	}{
		{"all", 0, 100, 1 << 20, 0, seq(0, 11)},
		{"count bound", 2, 3, 1 << 20, 0, seq(2, 3)},
		{"byte bound exact", 0, 100, 300, 0, seq(0, 3)},
		{"byte bound inside a block", 0, 100, 350, 0, seq(0, 3)},
		{"first block always passes", 10, 5, 1, 0, []uint64{10}},
		{"byte bound stops before the large block", 8, 5, 1000, 0, seq(8, 2)},
		{"f stops early", 1, 100, 1 << 20, 4, seq(1, 4)},
		{"from the last block", 10, 100, 1 << 20, 0, []uint64{10}},
		{"from the height", 11, 100, 1 << 20, 0, nil},
		{"far beyond the height", 1 << 62, 100, 1 << 20, 0, nil},
	}
	forEachStore(t, func(t *testing.T, s store.Store) {
		appendN(t, s, "c", 10, 100)
		big := testEnv(10, 1000)
		if err := s.Append("c", 10, testHash(big), big); err != nil {
			t.Fatal(err)
		}
		for _, tc := range cases {
			got, err := rangeNumbers(t, s, "c", tc.from, tc.maxCount, tc.maxBytes, tc.stopAfter)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("%s: Range(from %d, count %d, bytes %d) = %v, %v; want %v", tc.name, tc.from, tc.maxCount, tc.maxBytes, got, err, tc.want)
			}
		}
	})
}

func seq(first uint64, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = first + uint64(i)
	}
	return out
}

// TestRangeCallbackMayUseStore: f runs outside every lock, so it can append
// to the store it ranges over (the node serves pull while delivering).
func TestRangeCallbackMayUseStore(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store.Store) {
		appendN(t, s, "c", 3, 10)
		next := uint64(3)
		err := s.Range("c", 0, 10, 1<<20, func(n uint64, env []byte) bool {
			b := testBlocks(next, 1, 5000)[0]
			if err := s.Append("c", b.Number, b.Hash, b.Envelope); err != nil {
				t.Errorf("Append inside Range: %v", err)
			}
			next++
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if h, _ := s.Height("c"); h != 6 {
			t.Errorf("Height = %d; want 6", h)
		}
	})
}

func TestChannelsAreIndependent(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store.Store) {
		appendN(t, s, "a", 4, 10)
		appendN(t, s, "b", 2, 20)
		for ch, want := range map[string]uint64{"a": 4, "b": 2, "c": 0} {
			if h, err := s.Height(ch); h != want || err != nil {
				t.Errorf("Height(%s) = %d, %v; want %d", ch, h, err, want)
			}
		}
		if env, _ := s.Get("b", 1); len(env) != 20 {
			t.Errorf("Get(b, 1) returned %d bytes; want channel b's block", len(env))
		}
	})
}

// TestStoreOwnsItsBytes: the store copies what it is given and hands out
// copies, so neither side can change the other's bytes.
func TestStoreOwnsItsBytes(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store.Store) {
		b := testBlocks(0, 1, 64)[0]
		hash, env := bytes.Clone(b.Hash), bytes.Clone(b.Envelope)
		if err := s.Append("c", 0, hash, env); err != nil {
			t.Fatal(err)
		}
		hash[0]++
		env[0]++
		got, _ := s.Get("c", 0)
		last, _ := s.LastHash("c")
		if !bytes.Equal(got, b.Envelope) || !bytes.Equal(last, b.Hash) {
			t.Fatal("changing the appended slices changed the store")
		}
		got[0]++
		last[0]++
		_ = s.Range("c", 0, 1, 1<<20, func(_ uint64, e []byte) bool { e[1]++; return true })
		got, _ = s.Get("c", 0)
		last, _ = s.LastHash("c")
		if !bytes.Equal(got, b.Envelope) || !bytes.Equal(last, b.Hash) {
			t.Fatal("changing returned slices changed the store")
		}
	})
}

func TestChannelStates(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store.Store) {
		puts := []struct {
			ch string
			st store.ChannelState
		}{
			{"a", store.ChannelState{Joined: true}},
			{"b", store.ChannelState{Joined: true}},
			{"b", store.ChannelState{Joined: true, Left: true}},
			{"c", store.ChannelState{}},
		}
		want := map[string]store.ChannelState{}
		for _, p := range puts {
			if err := s.PutChannelState(p.ch, p.st); err != nil {
				t.Fatal(err)
			}
			want[p.ch] = p.st
		}
		got, err := s.ChannelStates()
		if err != nil || !maps.Equal(got, want) {
			t.Fatalf("ChannelStates = %v, %v; want %v", got, err, want)
		}
		got["a"] = store.ChannelState{Left: true}
		if again, _ := s.ChannelStates(); !maps.Equal(again, want) {
			t.Error("changing the returned map changed the store")
		}
	})
}

func TestClosed(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store.Store) {
		appendN(t, s, "c", 2, 10)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		b := testBlocks(2, 1, 10)[0]
		calls := map[string]func() error{
			"Append":          func() error { return s.Append("c", 2, b.Hash, b.Envelope) },
			"AppendBatch":     func() error { return s.AppendBatch("c", []store.Block{b}) },
			"empty batch":     func() error { return s.AppendBatch("c", nil) },
			"Height":          func() error { _, err := s.Height("c"); return err },
			"LastHash":        func() error { _, err := s.LastHash("c"); return err },
			"Get":             func() error { _, err := s.Get("c", 0); return err },
			"Range":           func() error { return s.Range("c", 0, 1, 1, func(uint64, []byte) bool { return true }) },
			"PutChannelState": func() error { return s.PutChannelState("c", store.ChannelState{}) },
			"ChannelStates":   func() error { _, err := s.ChannelStates(); return err },
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, store.ErrClosed) {
				t.Errorf("%s after Close = %v; want ErrClosed", name, err)
			}
		}
	})
}

// TestConcurrentUse runs appenders on separate channels and readers over
// them at once (meaningful under -race): every reader sees a prefix.
func TestConcurrentUse(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store.Store) {
		const channels, blocks = 3, 40
		var wg sync.WaitGroup
		for c := range channels {
			ch := fmt.Sprintf("ch%d", c)
			wg.Go(func() {
				for i := 0; i < blocks; i += 4 {
					if err := s.AppendBatch(ch, testBlocks(uint64(i), 4, 200)); err != nil {
						t.Errorf("AppendBatch(%s, %d): %v", ch, i, err)
						return
					}
				}
			})
			wg.Go(func() {
				for range blocks {
					h, err := s.Height(ch)
					if err != nil {
						t.Errorf("Height: %v", err)
						return
					}
					got, err := rangeNumbers(t, s, ch, 0, blocks, 1<<20, 0)
					if err != nil || uint64(len(got)) < h || !slices.Equal(got, seq(0, len(got))) {
						t.Errorf("Range after Height %d = %v, %v; want a prefix of at least %d", h, got, err, h)
						return
					}
				}
			})
		}
		wg.Wait()
		for c := range channels {
			if h, _ := s.Height(fmt.Sprintf("ch%d", c)); h != blocks {
				t.Errorf("channel %d height %d; want %d", c, h, blocks)
			}
		}
	})
}
