package transport

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	crypto_pb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// ed25519SignatureSize is the length of every Ed25519 signature; anything
// else is rejected before the (more expensive) verification.
const ed25519SignatureSize = 64

// signedMarshal encodes deterministically, so the same message signed twice
// gives the same payload. Receivers never re-encode: they verify the bytes
// they got.
var signedMarshal = proto.MarshalOptions{Deterministic: true}

// Sign marshals m once, deterministically, and signs exactly those bytes with
// key. The returned envelope carries no Secret; attach one made by SignSecret.
func Sign(key crypto.PrivKey, m *wire.Message) (*wire.Envelope, error) {
	payload, sig, err := signPayload(key, m)
	if err != nil {
		return nil, err
	}
	return &wire.Envelope{Payload: payload, Signature: sig}, nil
}

// SignSecret marshals s once, deterministically, and signs exactly those
// bytes with key, which must be the key that signed the envelope the secret
// is attached to (env.Secret = se). The secret is signed separately so that
// it can be stripped (see StripSecret) without invalidating the envelope.
func SignSecret(key crypto.PrivKey, s *wire.Secret) (*wire.SecretEnvelope, error) {
	payload, sig, err := signPayload(key, s)
	if err != nil {
		return nil, err
	}
	return &wire.SecretEnvelope{Payload: payload, Signature: sig}, nil
}

func signPayload(key crypto.PrivKey, m proto.Message) (payload, sig []byte, err error) {
	if key == nil || key.Type() != crypto_pb.KeyType_Ed25519 {
		return nil, nil, fmt.Errorf("sign: %w", ErrKeyType)
	}
	payload, err = signedMarshal.Marshal(m)
	if err != nil {
		return nil, nil, fmt.Errorf("sign: marshal: %w", err)
	}
	sig, err = key.Sign(payload)
	if err != nil {
		return nil, nil, fmt.Errorf("sign: %w", err)
	}
	return payload, sig, nil
}

// Open verifies env's signature over exactly its payload bytes and, when env
// carries a Secret, the secret's signature too, both against pub; then it
// decodes the payload. A Message with no content is malformed. Open does not
// decide whether pub is the right originator: the caller derives pub from
// the originator the message claims (see PublicKey).
func Open(env *wire.Envelope, pub crypto.PubKey) (*wire.Message, error) {
	if err := Verify(env, pub); err != nil {
		return nil, err
	}
	var m wire.Message
	if err := proto.Unmarshal(env.GetPayload(), &m); err != nil {
		return nil, fmt.Errorf("open envelope: %w: %w", ErrMalformedEnvelope, err)
	}
	if m.GetContent() == nil {
		return nil, fmt.Errorf("open envelope: %w: message has no content", ErrMalformedEnvelope)
	}
	return &m, nil
}

// Verify is Open without the decode: it checks env's signature over its
// payload and, when env carries a Secret, the secret's, both against pub.
// For a caller that has decoded the payload already, or does not need it.
func Verify(env *wire.Envelope, pub crypto.PubKey) error {
	if err := verify(env.GetPayload(), env.GetSignature(), pub); err != nil {
		return fmt.Errorf("open envelope: %w", err)
	}
	if se := env.GetSecret(); se != nil {
		if err := verify(se.GetPayload(), se.GetSignature(), pub); err != nil {
			return fmt.Errorf("open envelope secret: %w", err)
		}
	}
	return nil
}

// OpenSecret verifies and decodes env's Secret against pub. It returns
// (nil, nil) when env carries none, which is normal once the envelope left
// its originator's org.
func OpenSecret(env *wire.Envelope, pub crypto.PubKey) (*wire.Secret, error) {
	se := env.GetSecret()
	if se == nil {
		return nil, nil
	}
	if err := verify(se.GetPayload(), se.GetSignature(), pub); err != nil {
		return nil, fmt.Errorf("open secret: %w", err)
	}
	var s wire.Secret
	if err := proto.Unmarshal(se.GetPayload(), &s); err != nil {
		return nil, fmt.Errorf("open secret: %w: %w", ErrMalformedEnvelope, err)
	}
	return &s, nil
}

// StripSecret returns env without its Secret, sharing the payload and
// signature (which stay valid). env itself is not modified.
func StripSecret(env *wire.Envelope) *wire.Envelope {
	if env.GetSecret() == nil {
		return env
	}
	return &wire.Envelope{Payload: env.GetPayload(), Signature: env.GetSignature()}
}

// PublicKey returns the Ed25519 public key embedded in id. fabgossip peers
// have Ed25519 identities, whose peer IDs inline the key; any other ID is
// rejected with ErrKeyType.
func PublicKey(id peer.ID) (crypto.PubKey, error) {
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("public key of %s: %w: %w", id, ErrKeyType, err)
	}
	if pub.Type() != crypto_pb.KeyType_Ed25519 {
		return nil, fmt.Errorf("public key of %s: %w (got %s)", id, ErrKeyType, pub.Type())
	}
	return pub, nil
}

func verify(payload, sig []byte, pub crypto.PubKey) error {
	if pub == nil || pub.Type() != crypto_pb.KeyType_Ed25519 {
		return ErrKeyType
	}
	if len(sig) == 0 {
		return fmt.Errorf("%w: missing signature", ErrMalformedEnvelope)
	}
	if len(sig) != ed25519SignatureSize {
		return ErrBadSignature
	}
	ok, err := pub.Verify(payload, sig)
	if err != nil || !ok {
		return ErrBadSignature
	}
	return nil
}
