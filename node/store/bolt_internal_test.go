package store

import (
	"errors"
	"log/slog"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestPanicBreaksTheStore: bbolt panics on some damaged pages; the store
// turns the panic into ErrCorrupt, keeps no lock, and answers every later
// call with that error instead of trusting the file again.
func TestPanicBreaksTheStore(t *testing.T) {
	s, err := Open(t.TempDir(), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Append("c", 0, []byte{1}, []byte{2}); err != nil {
		t.Fatal(err)
	}
	err = s.update(func(*bolt.Tx) error { panic("assertion failed: page 7 already freed") })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("panicking transaction = %v; want ErrCorrupt", err)
	}
	if _, err := s.Height("c"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Height on a broken store = %v; want ErrCorrupt", err)
	}
	if err := s.Append("c", 1, []byte{1}, []byte{2}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Append on a broken store = %v; want ErrCorrupt", err)
	}
	// The rolled-back transaction released bbolt's locks: a raw read works.
	if err := s.db.View(func(*bolt.Tx) error { return nil }); err != nil {
		t.Errorf("raw read after the panic: %v", err)
	}
}

func TestGuardRecoversPanics(t *testing.T) {
	var short []byte
	cases := map[string]func() error{
		"panic with a value": func() error { panic("boom") },
		"slice out of range": func() error { short = short[:len(short)+1]; return nil },
		"nil dereference":    func() error { var p *Bolt; return p.db.Close() },
	}
	for name, fn := range cases {
		if err := guard(fn); !errors.Is(err, ErrCorrupt) || !errors.Is(err, errPanic) {
			t.Errorf("%s: guard = %v; want ErrCorrupt", name, err)
		}
	}
	if err := guard(func() error { return nil }); err != nil {
		t.Errorf("guard of a clean call = %v", err)
	}
}
