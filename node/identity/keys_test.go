package identity

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/crypto/pb"
	"google.golang.org/protobuf/proto"
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

func TestLoadKeyRefuses(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the permission cases need Unix mode bits")
	}
	marshal := func(k crypto.PrivKey) []byte {
		data, err := crypto.MarshalPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	good := marshal(mustKey(t, 1))
	rsaKey, _, err := crypto.GenerateRSAKeyPair(2048, seeded(2))
	if err != nil {
		t.Fatal(err)
	}
	secpKey, _, err := crypto.GenerateSecp256k1Key(seeded(3))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := crypto.MarshalPublicKey(mustKey(t, 1).GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	// seed ‖ public key with the public half of another key.
	mismatched, err := proto.Marshal(&pb.PrivateKey{Type: pb.KeyType_Ed25519.Enum(), Data: mismatchedEd25519(t)})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		data []byte
		mode os.FileMode
		want []string
	}{
		{name: "readable by others", data: good, mode: 0o644, want: []string{"permissions 0644 are too open", "chmod 600"}},
		{name: "readable by group", data: good, mode: 0o640, want: []string{"permissions 0640 are too open"}},
		{name: "writable by others", data: good, mode: 0o602, want: []string{"permissions 0602 are too open"}},
		{name: "RSA key", data: marshal(rsaKey), mode: 0o600, want: []string{"key type RSA, want Ed25519"}},
		{name: "secp256k1 key", data: marshal(secpKey), mode: 0o600, want: []string{"key type Secp256k1, want Ed25519"}},
		{name: "public key", data: pub, mode: 0o600, want: []string{"Ed25519 public key; want the private key"}},
		{name: "garbage", data: []byte("this is not a key\n"), mode: 0o600, want: []string{"not a libp2p private key"}},
		{name: "empty file", data: nil, mode: 0o600, want: []string{"not a libp2p private key"}},
		{name: "truncated key", data: good[:len(good)-5], mode: 0o600, want: []string{"not a libp2p private key"}},
		{name: "public half does not match seed", data: mismatched, mode: 0o600, want: []string{"public half does not match the seed"}},
		{name: "huge file", data: make([]byte, maxKeyFileSize+1), mode: 0o600, want: []string{"larger than"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "peer.key")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			key, err := LoadKey(path)
			if err == nil {
				t.Fatalf("LoadKey accepted it: %s key", key.Type())
			}
			assertContainsAll(t, err.Error(), append([]string{path}, tt.want...)...)
		})
	}

	for _, mode := range []os.FileMode{0o600, 0o400} {
		t.Run(fmt.Sprintf("owner-only mode %#o is accepted", mode), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "peer.key")
			if err := os.WriteFile(path, good, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadKey(path); err != nil {
				t.Errorf("LoadKey = %v", err)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, err := LoadKey(filepath.Join(t.TempDir(), "nope.key"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("LoadKey of a missing file = %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKey(dir)
		if err == nil {
			t.Fatal("LoadKey accepted a directory")
		}
		assertContainsAll(t, err.Error(), dir, "not a regular file")
	})
}

// mismatchedEd25519 is 64 bytes of libp2p Ed25519 private key whose public
// half belongs to another key.
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
