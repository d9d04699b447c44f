package store_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fabgossip/fabgossip/node/store"
)

var quiet = store.WithLogger(slog.New(slog.DiscardHandler))

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	s := openBolt(t, dir)
	a := appendN(t, s, "a", 7, 1000)
	if err := s.AppendBatch("b", testBlocks(0, 10, 50_000)); err != nil {
		t.Fatal(err)
	}
	states := map[string]store.ChannelState{"a": {Joined: true}, "b": {Joined: true, Left: true}}
	for ch, st := range states {
		if err := s.PutChannelState(ch, st); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openBolt(t, dir, store.WithVerifyTail(-1))
	for ch, want := range map[string]uint64{"a": 7, "b": 10} {
		if h, err := s.Height(ch); h != want || err != nil {
			t.Errorf("Height(%s) after reopen = %d, %v; want %d", ch, h, err, want)
		}
	}
	if h, _ := s.LastHash("a"); !bytes.Equal(h, a[6].Hash) {
		t.Errorf("LastHash(a) after reopen = %x; want %x", h, a[6].Hash)
	}
	got, err := rangeNumbers(t, s, "b", 0, 100, 1<<30, 0)
	if err != nil || len(got) != 10 {
		t.Errorf("Range(b) after reopen = %v, %v; want 10 blocks", got, err)
	}
	if st, err := s.ChannelStates(); err != nil || !maps.Equal(st, states) {
		t.Errorf("ChannelStates after reopen = %v, %v; want %v", st, err, states)
	}
	// Appending continues where it stopped.
	b := testBlocks(7, 1, 10)[0]
	if err := s.Append("a", 7, b.Hash, b.Envelope); err != nil {
		t.Errorf("Append after reopen: %v", err)
	}
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "peer0")
	openBolt(t, dir)
	for path, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, filepath.Join(dir, store.FileName): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		// The umask may only remove bits, never add group or other access.
		if fi.Mode()&^want != 0 {
			t.Errorf("%s has mode %v; want at most %v", path, fi.Mode(), want)
		}
	}
}

func TestOpenLockedByAnother(t *testing.T) {
	dir := t.TempDir()
	openBolt(t, dir)
	s, err := store.Open(dir, store.WithLockTimeout(20*time.Millisecond))
	if !errors.Is(err, store.ErrLocked) {
		if s != nil {
			_ = s.Close()
		}
		t.Fatalf("second Open = %v; want ErrLocked", err)
	}
}

func TestOpenOptionsValidated(t *testing.T) {
	cases := map[string]store.Option{
		"zero lock timeout":   store.WithLockTimeout(0),
		"negative verifyTail": store.WithVerifyTail(-2),
		"nil logger":          store.WithLogger(nil),
	}
	for name, opt := range cases {
		if s, err := store.Open(t.TempDir(), opt); !errors.Is(err, store.ErrInvalid) {
			if s != nil {
				_ = s.Close()
			}
			t.Errorf("%s: Open = %v; want ErrInvalid", name, err)
		}
	}
}

func TestOpenRefusesForeignFiles(t *testing.T) {
	t.Run("not a database", func(t *testing.T) {
		dir := t.TempDir()
		garbage := make([]byte, 64<<10)
		for i := range garbage {
			garbage[i] = byte(i * 7)
		}
		if err := os.WriteFile(filepath.Join(dir, store.FileName), garbage, 0o600); err != nil {
			t.Fatal(err)
		}
		if s, err := store.Open(dir); !errors.Is(err, store.ErrCorrupt) {
			if s != nil {
				_ = s.Close()
			}
			t.Fatalf("Open = %v; want ErrCorrupt", err)
		}
	})
	t.Run("unknown format version", func(t *testing.T) {
		dir := t.TempDir()
		s := openBolt(t, dir)
		_ = s.Close()
		rawUpdate(t, dir, func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("format"), []byte{9}) })
		if s, err := store.Open(dir); !errors.Is(err, store.ErrCorrupt) {
			if s != nil {
				_ = s.Close()
			}
			t.Fatalf("Open = %v; want ErrCorrupt", err)
		}
	})
}

// rawUpdate changes the database file behind the store's back, the way a
// damaged disk or a bug would.
func rawUpdate(t *testing.T, dir string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, store.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func key(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// TestOpenCutsBackToSoundPrefix: whatever breaks the sequence on disk — a
// missing block, a malformed key, a record failing its checksum — Open
// removes it and everything after it, so the store holds a prefix and
// appending resumes at the first damaged number.
func TestOpenCutsBackToSoundPrefix(t *testing.T) {
	channel := func(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket([]byte("blocks")).Bucket([]byte("c")) }
	flip := func(n uint64) func(tx *bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			rec := bytes.Clone(channel(tx).Get(key(n)))
			rec[len(rec)-1] ^= 0x40
			return channel(tx).Put(key(n), rec)
		}
	}
	cases := []struct {
		name       string
		damage     func(tx *bolt.Tx) error
		verifyTail int
		wantHeight uint64
	}{
		{"intact", func(*bolt.Tx) error { return nil }, store.DefaultVerifyTail, 20},
		{"corrupt last block", flip(19), store.DefaultVerifyTail, 19},
		{"corrupt block in the tail", flip(15), 10, 15},
		{"corrupt block verified with -1", flip(2), -1, 2},
		{"missing block", func(tx *bolt.Tx) error { return channel(tx).Delete(key(12)) }, 0, 12},
		{"missing first block", func(tx *bolt.Tx) error { return channel(tx).Delete(key(0)) }, 0, 0},
		{"truncated record", func(tx *bolt.Tx) error { return channel(tx).Put(key(18), []byte{1, 2}) }, store.DefaultVerifyTail, 18},
		{"malformed key after the blocks", func(tx *bolt.Tx) error { return channel(tx).Put([]byte{0, 0, 0, 5}, []byte("x")) }, 0, 20},
		{"malformed key before the blocks", func(tx *bolt.Tx) error { return channel(tx).Put([]byte{0}, []byte("x")) }, 0, 0},
		{"nested bucket among blocks", func(tx *bolt.Tx) error {
			_, err := channel(tx).CreateBucket(key(20))
			return err
		}, 0, 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openBolt(t, dir)
			bs := appendN(t, s, "c", 20, 500)
			_ = s.Close()
			rawUpdate(t, dir, tc.damage)

			s = openBolt(t, dir, store.WithVerifyTail(tc.verifyTail), quiet)
			if h, err := s.Height("c"); h != tc.wantHeight || err != nil {
				t.Fatalf("Height = %d, %v; want %d", h, err, tc.wantHeight)
			}
			got, err := rangeNumbers(t, s, "c", 0, 100, 1<<20, 0)
			if err != nil || !equalSeq(got, tc.wantHeight) {
				t.Fatalf("Range = %v, %v; want 0..%d", got, err, tc.wantHeight)
			}
			var wantLast []byte
			if tc.wantHeight > 0 {
				wantLast = bs[tc.wantHeight-1].Hash
			}
			if h, _ := s.LastHash("c"); !bytes.Equal(h, wantLast) {
				t.Errorf("LastHash = %x; want %x", h, wantLast)
			}
			b := testBlocks(tc.wantHeight, 1, 10)[0]
			if err := s.Append("c", b.Number, b.Hash, b.Envelope); err != nil {
				t.Errorf("Append at the new height: %v", err)
			}
		})
	}
}

func equalSeq(got []uint64, n uint64) bool {
	if uint64(len(got)) != n {
		return false
	}
	for i, g := range got {
		if g != uint64(i) {
			return false
		}
	}
	return true
}

// TestCorruptRecordDetectedOnRead: damage older than the verified tail is
// found when the block is read, never returned as data.
func TestCorruptRecordDetectedOnRead(t *testing.T) {
	dir := t.TempDir()
	s := openBolt(t, dir)
	appendN(t, s, "c", 10, 300)
	if err := s.PutChannelState("c", store.ChannelState{Joined: true}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	rawUpdate(t, dir, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("blocks")).Bucket([]byte("c"))
		rec := bytes.Clone(b.Get(key(3)))
		rec[100] ^= 1
		if err := b.Put(key(3), rec); err != nil {
			return err
		}
		// A state record moved to another channel fails its checksum.
		return tx.Bucket([]byte("channels")).Put([]byte("d"), tx.Bucket([]byte("channels")).Get([]byte("c")))
	})
	s = openBolt(t, dir, store.WithVerifyTail(2))
	if h, _ := s.Height("c"); h != 10 {
		t.Fatalf("Height = %d; want 10 (the damage is outside the verified tail)", h)
	}
	if _, err := s.Get("c", 3); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("Get(3) = %v; want ErrCorrupt", err)
	}
	got, err := rangeNumbers(t, s, "c", 0, 100, 1<<20, 0)
	if !errors.Is(err, store.ErrCorrupt) || !equalSeq(got, 3) {
		t.Errorf("Range = %v, %v; want blocks 0..2 then ErrCorrupt", got, err)
	}
	if _, err := s.ChannelStates(); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("ChannelStates = %v; want ErrCorrupt", err)
	}
}

// TestDamagedFileNeverPanics overwrites random bytes of a store's file, as a
// failing disk would, and uses the store: every call may fail, none may
// panic or hang.
func TestDamagedFileNeverPanics(t *testing.T) {
	base := t.TempDir()
	s := openBolt(t, base)
	appendN(t, s, "a", 30, 3000)
	if err := s.AppendBatch("b", testBlocks(0, 3, 20_000)); err != nil {
		t.Fatal(err)
	}
	_ = s.PutChannelState("a", store.ChannelState{Joined: true})
	_ = s.Close()
	pristine, err := os.ReadFile(filepath.Join(base, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(8, 8))
	trials := 150
	if testing.Short() {
		trials = 30
	}
	opened, failed := 0, 0
	for trial := range trials {
		damaged := bytes.Clone(pristine)
		// Damage a few runs of bytes, including page headers.
		for range 1 + rng.IntN(4) {
			at := rng.IntN(len(damaged))
			for i := range 1 + rng.IntN(16) {
				if at+i < len(damaged) {
					damaged[at+i] = byte(rng.Uint32())
				}
			}
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, store.FileName), damaged, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := store.Open(dir, store.WithVerifyTail(-1), store.WithNoSync(), quiet)
		if err != nil {
			failed++
			continue
		}
		opened++
		exercise(s, trial)
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("trial %d: Close = %v", trial, err)
		}
	}
	t.Logf("%d damaged files: %d opened, %d refused", trials, opened, failed)
}

// exercise calls every method of s; only the absence of panics matters.
func exercise(s store.Store, trial int) {
	for _, ch := range []string{"a", "b"} {
		h, _ := s.Height(ch)
		_, _ = s.LastHash(ch)
		_, _ = s.Get(ch, uint64(trial)%40)
		_ = s.Range(ch, 0, 100, 1<<20, func(uint64, []byte) bool { return true })
		b := testBlocks(h, 1, 1000)[0]
		_ = s.Append(ch, b.Number, b.Hash, b.Envelope)
	}
	_, _ = s.ChannelStates()
	_ = s.PutChannelState("a", store.ChannelState{Left: true})
}
