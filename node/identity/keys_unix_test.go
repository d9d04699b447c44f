//go:build unix

package identity

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/crypto/pb"
	"google.golang.org/protobuf/proto"
)

// The permission cases need Unix mode bits.
func TestLoadKeyRefuses(t *testing.T) {
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
