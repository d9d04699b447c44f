package identity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/fabgossip/fabgossip/transport/wire"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"
)

// MaxCertificateBodySize caps a certificate body. A real body is under 400
// bytes (two names of at most MaxNameLen, a peer ID, three integers);
// anything larger is rejected as malformed before a signature is checked.
const MaxCertificateBodySize = 1024

// maxCertificateFileSize caps a certificate file (PEM of a capped body).
const maxCertificateFileSize = 16 << 10

// pemType is the PEM block type of a certificate file.
const pemType = "FABGOSSIP CERTIFICATE"

// CertificateFields is what a membership certificate says: peer PeerID
// belongs to org Org of network Network from NotBefore (inclusive) until
// NotAfter (exclusive). Times have whole-second precision on the wire.
type CertificateFields struct {
	Network   string
	Org       string
	PeerID    peer.ID
	NotBefore time.Time
	NotAfter  time.Time
	// Serial tells apart certificates of the same peer, for the issuer's
	// records; verification does not interpret it.
	Serial uint64
}

// Verified is a certificate's content after VerifyCertificate accepted it:
// the only form in which an org membership should be trusted. Times are UTC.
type Verified CertificateFields

// IssueCertificate makes the membership certificate f, signed by the org CA
// caKey: the CA signs exactly the bytes of the deterministically marshalled
// wire.CertificateBody, and those bytes travel as they are, so verifiers never
// re-marshal. Times are truncated to whole seconds. It refuses a CA key that
// is not Ed25519, invalid names, an invalid peer ID, zero times and an empty
// validity window.
func IssueCertificate(caKey crypto.PrivKey, f CertificateFields) (*wire.Certificate, error) {
	if caKey == nil {
		return nil, errors.New("issue certificate: nil CA key")
	}
	if caKey.Type() != pb.KeyType_Ed25519 {
		return nil, fmt.Errorf("issue certificate: CA key type %s, want Ed25519", caKey.Type())
	}
	for _, n := range []struct{ what, value string }{{"network", f.Network}, {"org", f.Org}} {
		if n.value == "" {
			return nil, fmt.Errorf("issue certificate: missing %s name", n.what)
		}
		if msg := checkName(n.value); msg != "" {
			return nil, fmt.Errorf("issue certificate: invalid %s name %q: %s", n.what, n.value, msg)
		}
	}
	if _, err := peer.IDFromBytes([]byte(f.PeerID)); err != nil {
		return nil, fmt.Errorf("issue certificate: invalid peer ID %q: %v", f.PeerID, err)
	}
	if f.NotBefore.IsZero() || f.NotAfter.IsZero() {
		return nil, errors.New("issue certificate: NotBefore and NotAfter must both be set")
	}
	if f.NotAfter.Unix() <= f.NotBefore.Unix() {
		return nil, fmt.Errorf("issue certificate: NotAfter %s is not after NotBefore %s (whole seconds)",
			f.NotAfter.UTC().Format(time.RFC3339), f.NotBefore.UTC().Format(time.RFC3339))
	}
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(&wire.CertificateBody{
		Network:   f.Network,
		Org:       f.Org,
		PeerId:    []byte(f.PeerID),
		NotBefore: f.NotBefore.Unix(),
		NotAfter:  f.NotAfter.Unix(),
		Serial:    f.Serial,
	})
	if err != nil {
		return nil, fmt.Errorf("issue certificate: %w", err)
	}
	sig, err := caKey.Sign(body)
	if err != nil {
		return nil, fmt.Errorf("issue certificate: sign: %w", err)
	}
	return &wire.Certificate{Body: body, Signature: sig}, nil
}

// DecodeCertificate reads what a certificate claims without checking any of
// it: for display and for logging why a certificate was refused, never for
// deciding anything. Errors wrap ErrMalformedCert.
func DecodeCertificate(cert *wire.Certificate) (CertificateFields, error) {
	if cert == nil {
		return CertificateFields{}, fmt.Errorf("%w: no certificate", ErrMalformedCert)
	}
	if n := len(cert.GetBody()); n == 0 || n > MaxCertificateBodySize {
		return CertificateFields{}, fmt.Errorf("%w: body of %d bytes, want 1 to %d", ErrMalformedCert, n, MaxCertificateBodySize)
	}
	var body wire.CertificateBody
	if err := proto.Unmarshal(cert.GetBody(), &body); err != nil {
		return CertificateFields{}, fmt.Errorf("%w: body: %v", ErrMalformedCert, err)
	}
	id, err := peer.IDFromBytes(body.GetPeerId())
	if err != nil {
		return CertificateFields{}, fmt.Errorf("%w: peer ID: %v", ErrMalformedCert, err)
	}
	switch {
	case body.GetNetwork() == "":
		return CertificateFields{}, fmt.Errorf("%w: no network name", ErrMalformedCert)
	case body.GetOrg() == "":
		return CertificateFields{}, fmt.Errorf("%w: no org name", ErrMalformedCert)
	case body.GetNotAfter() <= body.GetNotBefore():
		return CertificateFields{}, fmt.Errorf("%w: empty validity window [%d, %d)", ErrMalformedCert, body.GetNotBefore(), body.GetNotAfter())
	}
	return CertificateFields{
		Network:   body.GetNetwork(),
		Org:       body.GetOrg(),
		PeerID:    id,
		NotBefore: time.Unix(body.GetNotBefore(), 0).UTC(),
		NotAfter:  time.Unix(body.GetNotAfter(), 0).UTC(),
		Serial:    body.GetSerial(),
	}, nil
}

// VerifyCertificate accepts cert as proof that peer remote is a member of an
// org of net at time now, and returns what it proves. remote is the peer the
// certificate must bind: the authenticated remote of a connection, or the
// originator of a signed message that carries the certificate.
//
// The checks, in order, each failure wrapping its sentinel with detail:
// the certificate decodes (ErrMalformedCert); it names this network
// (ErrWrongNetwork); it names an org of the network (ErrUnknownOrg); that
// org's CA signed exactly the body bytes (ErrBadCertSignature); it binds
// remote (ErrWrongPeer); NotBefore <= now (ErrNotYetValid); now < NotAfter
// (ErrExpired). Claims are read before the signature is checked only to pick
// the CA and to give a precise reason; nothing is accepted unsigned.
func VerifyCertificate(net *Network, cert *wire.Certificate, remote peer.ID, now time.Time) (Verified, error) {
	return verifyCertificate(net, cert, remote, now, nil)
}

// verifyCertificate is VerifyCertificate whose CA signature check asks
// cache first (none when nil), and tells it of a signature that checked out.
func verifyCertificate(net *Network, cert *wire.Certificate, remote peer.ID, now time.Time, cache *CertCache) (Verified, error) {
	if net == nil {
		return Verified{}, errors.New("verify certificate: nil network")
	}
	f, err := DecodeCertificate(cert)
	if err != nil {
		return Verified{}, err
	}
	if len(cert.GetSignature()) != ed25519.SignatureSize {
		return Verified{}, fmt.Errorf("%w: signature of %d bytes, want %d", ErrMalformedCert, len(cert.GetSignature()), ed25519.SignatureSize)
	}
	if f.Network != net.Name() {
		return Verified{}, fmt.Errorf("%w: it names network %q, this is %q", ErrWrongNetwork, f.Network, net.Name())
	}
	org, ok := net.Org(f.Org)
	if !ok {
		return Verified{}, fmt.Errorf("%w: %q is not an org of network %q", ErrUnknownOrg, f.Org, net.Name())
	}
	if !cache.signed(org.CA, cert) {
		return Verified{}, fmt.Errorf("%w: certificate of peer %s claims org %q", ErrBadCertSignature, f.PeerID, f.Org)
	}
	if f.PeerID != remote {
		return Verified{}, fmt.Errorf("%w: it is for %s, presented by %s", ErrWrongPeer, f.PeerID, remote)
	}
	if now.Before(f.NotBefore) {
		return Verified{}, fmt.Errorf("%w: valid from %s, now is %s", ErrNotYetValid, f.NotBefore.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if !now.Before(f.NotAfter) {
		return Verified{}, fmt.Errorf("%w: valid until %s, now is %s", ErrExpired, f.NotAfter.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return Verified(f), nil
}

// WriteCertificate writes cert to path as PEM: a block of type
// "FABGOSSIP CERTIFICATE" whose content is the protobuf-marshalled
// wire.Certificate. Text, so it survives copy-paste and config management;
// certificates are public, so the mode is 0644. With CreateOnly it refuses to
// replace an existing file (the error wraps fs.ErrExist).
func WriteCertificate(path string, cert *wire.Certificate, mode WriteMode) error {
	if _, err := DecodeCertificate(cert); err != nil {
		return fmt.Errorf("write certificate %s: %w", path, err)
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(cert)
	if err != nil {
		return fmt.Errorf("write certificate %s: %w", path, err)
	}
	return writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: data}), 0o644, mode)
}

// LoadCertificate reads a certificate file written by WriteCertificate. It
// also accepts the bare protobuf bytes of a wire.Certificate. It checks that
// the certificate decodes, not that it verifies: that needs the network and
// the peer (see VerifyCertificate). Decoding errors wrap ErrMalformedCert.
func LoadCertificate(path string) (*wire.Certificate, error) {
	data, err := readFileCapped(path, maxCertificateFileSize)
	if err != nil {
		return nil, fmt.Errorf("certificate file: %w", err)
	}
	cert, err := parseCertificateFile(data)
	if err != nil {
		return nil, fmt.Errorf("certificate file %s: %w", path, err)
	}
	return cert, nil
}

// parseCertificateFile decodes the contents of a certificate file.
func parseCertificateFile(data []byte) (*wire.Certificate, error) {
	raw := data
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")) {
		block, rest := pem.Decode(data)
		switch {
		case block == nil:
			return nil, fmt.Errorf("%w: invalid PEM", ErrMalformedCert)
		case block.Type != pemType:
			return nil, fmt.Errorf("%w: PEM block %q, want %q", ErrMalformedCert, block.Type, pemType)
		case len(bytes.TrimSpace(rest)) != 0:
			return nil, fmt.Errorf("%w: data after the PEM block", ErrMalformedCert)
		}
		raw = block.Bytes
	}
	var cert wire.Certificate
	if err := proto.Unmarshal(raw, &cert); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedCert, err)
	}
	if _, err := DecodeCertificate(&cert); err != nil {
		return nil, err
	}
	return &cert, nil
}
