package identity

import (
	"bytes"
	"crypto/ed25519"
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/crypto/pb"
	"google.golang.org/protobuf/proto"
)

// KeyFileMode is the mode WriteKey creates key files with. LoadKey accepts
// no group or other permission bits.
const KeyFileMode = 0o600

// maxKeyFileSize caps a key file; an Ed25519 key file is under 100 bytes.
const maxKeyFileSize = 4 << 10

// GenerateKey makes a new Ed25519 key, for a peer or an org CA. A nil rand
// means crypto/rand; pass a seeded reader for reproducible test keys.
func GenerateKey(rand io.Reader) (crypto.PrivKey, error) {
	if rand == nil {
		rand = cryptorand.Reader
	}
	key, _, err := crypto.GenerateEd25519Key(rand)
	if err != nil {
		return nil, fmt.Errorf("generate Ed25519 key: %w", err)
	}
	return key, nil
}

// WriteKey writes key to path in libp2p's protobuf encoding
// (crypto.MarshalPrivateKey), atomically, with mode 0600. With CreateOnly it
// refuses to replace an existing file (the error wraps fs.ErrExist): a
// replaced key is a lost identity. Only Ed25519 keys are written, since
// LoadKey accepts nothing else.
func WriteKey(path string, key crypto.PrivKey, mode WriteMode) error {
	if key == nil {
		return fmt.Errorf("write key %s: nil key", path)
	}
	if key.Type() != pb.KeyType_Ed25519 {
		return fmt.Errorf("write key %s: key type %s, want Ed25519", path, key.Type())
	}
	data, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return fmt.Errorf("write key %s: %w", path, err)
	}
	return writeFileAtomic(path, data, KeyFileMode, mode)
}

// LoadKey reads an Ed25519 private key written by WriteKey. It refuses, with
// an error naming the file and the reason: a file with any permission for
// group or others (as ssh does; the fix is chmod 600), a key of another type,
// and anything that is not a libp2p private key. The permission check is
// skipped on Windows, whose permissions Go does not map to mode bits.
func LoadKey(path string) (crypto.PrivKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer func() { _ = f.Close() }()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s: not a regular file (%s)", path, info.Mode().Type())
	}
	if perm := info.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s: permissions %#o are too open (want %#o: run chmod 600 %s)", path, perm, KeyFileMode, path)
	}
	data, err := readOpenFile(f, path, maxKeyFileSize)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	key, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return key, nil
}

// parseKey decodes crypto.MarshalPrivateKey bytes of an Ed25519 key. It reads
// the envelope first, so a key of another type is named rather than parsed.
func parseKey(data []byte) (crypto.PrivKey, error) {
	var msg pb.PrivateKey
	if err := proto.Unmarshal(data, &msg); err != nil || msg.Type == nil || len(msg.Data) == 0 {
		return nil, errors.New("not a libp2p private key (want crypto.MarshalPrivateKey bytes of an Ed25519 key)")
	}
	if msg.GetType() != pb.KeyType_Ed25519 {
		return nil, fmt.Errorf("key type %s, want Ed25519", msg.GetType())
	}
	if len(msg.GetData()) == ed25519.PublicKeySize {
		return nil, errors.New("this is an Ed25519 public key; want the private key")
	}
	key, err := crypto.UnmarshalEd25519PrivateKey(msg.GetData())
	if err != nil {
		return nil, fmt.Errorf("invalid Ed25519 key: %v", err)
	}
	// An Ed25519 private key is seed ‖ public key; a public half that does
	// not match the seed would make every signature fail later, far from
	// the cause.
	raw, err := key.Raw()
	if err != nil {
		return nil, fmt.Errorf("invalid Ed25519 key: %v", err)
	}
	if !bytes.Equal(raw, ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])) {
		return nil, errors.New("invalid Ed25519 key: public half does not match the seed")
	}
	return key, nil
}
