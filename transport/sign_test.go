package transport

import (
	"crypto/rand"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/transport/wire"
)

func testMessage() *wire.Message {
	return &wire.Message{Content: &wire.Message_Block{Block: &wire.Block{
		Channel: "ch", Number: 7, DataHash: []byte{1, 2, 3}, Data: []byte("data"),
	}}}
}

func TestSignOpen(t *testing.T) {
	key := testKey(t, 1)
	pub := key.GetPublic()
	other := testKey(t, 2).GetPublic()
	secret := &wire.Secret{InternalAddrs: [][]byte{[]byte("addr")}}

	signed := func(t *testing.T) *wire.Envelope {
		t.Helper()
		env, err := Sign(key, testMessage())
		if err != nil {
			t.Fatal(err)
		}
		se, err := SignSecret(key, secret)
		if err != nil {
			t.Fatal(err)
		}
		env.Secret = se
		return env
	}
	cases := []struct {
		name   string
		tamper func(*wire.Envelope)
		pub    crypto.PubKey
		want   error // nil: opens
	}{
		{"round trip", func(*wire.Envelope) {}, pub, nil},
		{"secret stripped", func(e *wire.Envelope) { e.Secret = nil }, pub, nil},
		{"tampered payload", func(e *wire.Envelope) { e.Payload[len(e.Payload)-1] ^= 1 }, pub, ErrBadSignature},
		{"tampered signature", func(e *wire.Envelope) { e.Signature[0] ^= 1 }, pub, ErrBadSignature},
		{"truncated signature", func(e *wire.Envelope) { e.Signature = e.Signature[:10] }, pub, ErrBadSignature},
		{"missing signature", func(e *wire.Envelope) { e.Signature = nil }, pub, ErrMalformedEnvelope},
		{"tampered secret", func(e *wire.Envelope) { e.Secret.Payload[0] ^= 1 }, pub, ErrBadSignature},
		{"secret signed by another key", func(e *wire.Envelope) {
			se, err := SignSecret(testKey(t, 2), secret)
			if err != nil {
				t.Fatal(err)
			}
			e.Secret = se
		}, pub, ErrBadSignature},
		{"wrong key", func(*wire.Envelope) {}, other, ErrBadSignature},
		{"no key", func(*wire.Envelope) {}, nil, ErrKeyType},
		{"payload not a message", func(e *wire.Envelope) {
			e.Payload = []byte{0xff, 0xff}
			sig, err := key.Sign(e.Payload)
			if err != nil {
				t.Fatal(err)
			}
			e.Signature = sig
		}, pub, ErrMalformedEnvelope},
		{"message without content", func(e *wire.Envelope) {
			e.Payload = nil
			sig, err := key.Sign(nil)
			if err != nil {
				t.Fatal(err)
			}
			e.Signature = sig
		}, pub, ErrMalformedEnvelope},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := signed(t)
			tc.tamper(env)
			m, err := Open(env, tc.pub)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open: %v, want %v", err, tc.want)
			}
			if tc.want == nil && !proto.Equal(m, testMessage()) {
				t.Fatalf("opened %v, want %v", m, testMessage())
			}
			if tc.want != nil && m != nil {
				t.Fatal("Open returned a message with its error")
			}
		})
	}
}

func TestSignIsDeterministic(t *testing.T) {
	key := testKey(t, 1)
	a, err := Sign(key, testMessage())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Sign(key, testMessage())
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(a, b) {
		t.Fatal("signing the same message twice gave different envelopes")
	}
}

func TestOpenSecretAndStrip(t *testing.T) {
	key := testKey(t, 1)
	env, err := Sign(key, testMessage())
	if err != nil {
		t.Fatal(err)
	}
	if s, err := OpenSecret(env, key.GetPublic()); s != nil || err != nil {
		t.Fatalf("OpenSecret without a secret: %v, %v", s, err)
	}
	secret := &wire.Secret{InternalAddrs: [][]byte{[]byte("a"), []byte("b")}}
	if env.Secret, err = SignSecret(key, secret); err != nil {
		t.Fatal(err)
	}
	got, err := OpenSecret(env, key.GetPublic())
	if err != nil || !proto.Equal(got, secret) {
		t.Fatalf("OpenSecret: %v, %v", got, err)
	}
	if _, err := OpenSecret(env, testKey(t, 2).GetPublic()); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("OpenSecret with the wrong key: %v", err)
	}
	stripped := StripSecret(env)
	if stripped.Secret != nil || env.Secret == nil {
		t.Fatal("StripSecret must drop the secret from a copy only")
	}
	if _, err := Open(stripped, key.GetPublic()); err != nil {
		t.Fatalf("stripped envelope does not open: %v", err)
	}
}

func TestOnlyEd25519(t *testing.T) {
	rsaKey, _, err := crypto.GenerateKeyPairWithReader(crypto.RSA, 2048, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecdsaKey, ecdsaPub, err := crypto.GenerateKeyPairWithReader(crypto.ECDSA, 0, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string]crypto.PrivKey{"rsa": rsaKey, "ecdsa": ecdsaKey, "nil": nil} {
		if _, err := Sign(k, testMessage()); !errors.Is(err, ErrKeyType) {
			t.Errorf("Sign with %s key: %v, want ErrKeyType", name, err)
		}
		if _, err := SignSecret(k, &wire.Secret{}); !errors.Is(err, ErrKeyType) {
			t.Errorf("SignSecret with %s key: %v, want ErrKeyType", name, err)
		}
	}
	env, err := Sign(testKey(t, 1), testMessage())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(env, ecdsaPub); !errors.Is(err, ErrKeyType) {
		t.Errorf("Open with an ECDSA key: %v, want ErrKeyType", err)
	}

	// Peer IDs: Ed25519 IDs inline their key; ECDSA IDs are hashes.
	edID, err := peer.IDFromPrivateKey(testKey(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := PublicKey(edID)
	if err != nil || !pub.Equals(testKey(t, 3).GetPublic()) {
		t.Fatalf("PublicKey of an Ed25519 ID: %v, %v", pub, err)
	}
	ecID, err := peer.IDFromPublicKey(ecdsaPub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PublicKey(ecID); !errors.Is(err, ErrKeyType) {
		t.Errorf("PublicKey of an ECDSA ID: %v, want ErrKeyType", err)
	}
}
