package identity

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/crypto/pb"
)

func TestKeyRoundTrip(t *testing.T) {
	key := mustKey(t, 1)
	path := filepath.Join(t.TempDir(), "peer.key")
	if err := WriteKey(path, key, CreateOnly); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %#o, want 0600", info.Mode().Perm())
	}
	back, err := LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !crypto.KeyEqual(key, back) {
		t.Error("LoadKey returned another key than WriteKey wrote")
	}
	// The file is the interoperable libp2p encoding, readable by any libp2p tool.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if other, err := crypto.UnmarshalPrivateKey(data); err != nil || !crypto.KeyEqual(key, other) {
		t.Errorf("key file is not crypto.MarshalPrivateKey bytes: %v", err)
	}
}

func TestWriteKeyDoesNotOverwrite(t *testing.T) {
	first, second := mustKey(t, 1), mustKey(t, 2)
	path := filepath.Join(t.TempDir(), "peer.key")
	if err := WriteKey(path, first, CreateOnly); err != nil {
		t.Fatal(err)
	}
	err := WriteKey(path, second, CreateOnly)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("WriteKey over an existing file = %v, want fs.ErrExist", err)
	}
	assertContainsAll(t, err.Error(), path, "already exists")
	if got, err := LoadKey(path); err != nil || !crypto.KeyEqual(got, first) {
		t.Errorf("refused WriteKey changed the file: %v", err)
	}

	if err := WriteKey(path, second, Replace); err != nil {
		t.Fatalf("WriteKey with Replace = %v", err)
	}
	if got, err := LoadKey(path); err != nil || !crypto.KeyEqual(got, second) {
		t.Errorf("WriteKey with Replace did not replace the key: %v", err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after the writes, want only the key (no temporary files)", len(entries))
	}
}

func TestWriteKeyRefusesOtherKeyTypes(t *testing.T) {
	secp, _, err := crypto.GenerateSecp256k1Key(seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "peer.key")
	err = WriteKey(path, secp, CreateOnly)
	if err == nil {
		t.Fatal("WriteKey wrote a secp256k1 key that LoadKey would refuse")
	}
	assertContainsAll(t, err.Error(), path, "Secp256k1", "want Ed25519")
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("refused WriteKey left a file: %v", err)
	}
}

func mismatchedEd25519(t *testing.T) []byte {
	a, err := mustKey(t, 1).Raw()
	if err != nil {
		t.Fatal(err)
	}
	b, err := mustKey(t, 2).Raw()
	if err != nil {
		t.Fatal(err)
	}
	return append(append([]byte{}, a[:32]...), b[32:]...)
}

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey(seeded(4))
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey(seeded(4))
	if err != nil {
		t.Fatal(err)
	}
	if a.Type() != pb.KeyType_Ed25519 || !crypto.KeyEqual(a, b) {
		t.Error("GenerateKey with the same seed gave different keys, or not Ed25519")
	}
	c, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if crypto.KeyEqual(a, c) {
		t.Error("GenerateKey(nil) returned the seeded key instead of a random one")
	}
}
