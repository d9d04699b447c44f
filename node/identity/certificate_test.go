package identity

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fabgossip/fabgossip/transport/wire"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"
)

var (
	t0        = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	notBefore = t0
	notAfter  = t0.Add(24 * time.Hour)
	validNow  = t0.Add(time.Hour)
)

// sentinels are the documented reasons VerifyCertificate gives.
var sentinels = []error{
	ErrMalformedCert, ErrWrongNetwork, ErrUnknownOrg, ErrBadCertSignature,
	ErrWrongPeer, ErrNotYetValid, ErrExpired,
}

func mustIssue(t testing.TB, ca crypto.PrivKey, f CertificateFields) *wire.Certificate {
	t.Helper()
	cert, err := IssueCertificate(ca, f)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// fieldsFor is a certificate of org Org1 of fabnet for id, valid [notBefore, notAfter).
func fieldsFor(id peer.ID) CertificateFields {
	return CertificateFields{Network: "fabnet", Org: "Org1", PeerID: id, NotBefore: notBefore, NotAfter: notAfter, Serial: 42}
}

// reSigned replaces a certificate's body, keeping the old signature.
func reSigned(t testing.TB, cert *wire.Certificate, edit func(*wire.CertificateBody)) *wire.Certificate {
	t.Helper()
	var body wire.CertificateBody
	if err := proto.Unmarshal(cert.GetBody(), &body); err != nil {
		t.Fatal(err)
	}
	edit(&body)
	data, err := proto.Marshal(&body)
	if err != nil {
		t.Fatal(err)
	}
	return &wire.Certificate{Body: data, Signature: cert.GetSignature()}
}

// bodyCert is a certificate with the given body bytes, signed by ca.
func bodyCert(t testing.TB, ca crypto.PrivKey, body *wire.CertificateBody) *wire.Certificate {
	t.Helper()
	data, err := proto.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := ca.Sign(data)
	if err != nil {
		t.Fatal(err)
	}
	return &wire.Certificate{Body: data, Signature: sig}
}

func TestCertificateRoundTrip(t *testing.T) {
	n, cas := testNetwork(t)
	_, id := mustPeer(t, 10)
	fields := fieldsFor(id)
	cert := mustIssue(t, cas["Org1"], fields)

	for _, now := range []time.Time{notBefore, validNow, notAfter.Add(-time.Second)} {
		got, err := VerifyCertificate(n, cert, id, now)
		if err != nil {
			t.Fatalf("VerifyCertificate at %s = %v", now, err)
		}
		if got != Verified(fields) {
			t.Errorf("VerifyCertificate = %+v, want %+v", got, fields)
		}
	}

	// The CA signs exactly the marshalled body, which decodes to the fields.
	if ok, err := cas["Org1"].GetPublic().Verify(cert.GetBody(), cert.GetSignature()); err != nil || !ok {
		t.Errorf("signature is not the CA's over the body bytes: %v", err)
	}
	decoded, err := DecodeCertificate(cert)
	if err != nil || decoded != fields {
		t.Errorf("DecodeCertificate = %+v, %v; want %+v", decoded, err, fields)
	}
	// Issuing is deterministic: the same fields give the same bytes.
	again := mustIssue(t, cas["Org1"], fields)
	if !proto.Equal(cert, again) {
		t.Error("issuing the same certificate twice gave different bytes")
	}
}

func TestCertificateTimesAreWholeSeconds(t *testing.T) {
	n, cas := testNetwork(t)
	_, id := mustPeer(t, 10)
	f := fieldsFor(id)
	f.NotBefore = notBefore.Add(900 * time.Millisecond)
	f.NotAfter = notAfter.Add(900 * time.Millisecond)
	got, err := VerifyCertificate(n, mustIssue(t, cas["Org1"], f), id, validNow)
	if err != nil {
		t.Fatal(err)
	}
	if !got.NotBefore.Equal(notBefore) || !got.NotAfter.Equal(notAfter) {
		t.Errorf("validity [%s, %s), want [%s, %s)", got.NotBefore, got.NotAfter, notBefore, notAfter)
	}
}

func TestVerifyCertificateRejects(t *testing.T) {
	n, cas := testNetwork(t)
	_, id := mustPeer(t, 10)
	_, other := mustPeer(t, 11)
	stranger := mustKey(t, 99) // a CA no org of fabnet has
	good := mustIssue(t, cas["Org1"], fieldsFor(id))
	_, otherCAs := otherNetwork(t)

	tests := []struct {
		name   string
		cert   *wire.Certificate
		remote peer.ID
		now    time.Time
		want   error
		detail string
	}{
		{
			name: "org not in the network",
			cert: mustIssue(t, stranger, CertificateFields{Network: "fabnet", Org: "Org9", PeerID: id, NotBefore: notBefore, NotAfter: notAfter}),
			want: ErrUnknownOrg, detail: `"Org9" is not an org of network "fabnet"`,
		},
		{
			name: "unknown CA claiming a known org",
			cert: mustIssue(t, stranger, fieldsFor(id)),
			want: ErrBadCertSignature, detail: `claims org "Org1"`,
		},
		{
			name: "another org's CA claiming this org",
			cert: mustIssue(t, cas["Org2"], fieldsFor(id)),
			want: ErrBadCertSignature, detail: `claims org "Org1"`,
		},
		{
			name:   "certificate of another peer",
			cert:   good,
			remote: other,
			want:   ErrWrongPeer, detail: "it is for " + id.String() + ", presented by " + other.String(),
		},
		{
			name: "another network",
			cert: mustIssue(t, otherCAs["Org1"], CertificateFields{Network: "othernet", Org: "Org1", PeerID: id, NotBefore: notBefore, NotAfter: notAfter}),
			want: ErrWrongNetwork, detail: `"othernet", this is "fabnet"`,
		},
		{name: "expired at NotAfter", cert: good, now: notAfter, want: ErrExpired, detail: "valid until 2026-01-02T00:00:00Z"},
		{name: "expired long ago", cert: good, now: notAfter.Add(365 * 24 * time.Hour), want: ErrExpired},
		{name: "not yet valid", cert: good, now: notBefore.Add(-time.Second), want: ErrNotYetValid, detail: "valid from 2026-01-01T00:00:00Z"},
		{
			name: "tampered body: validity extended",
			cert: reSigned(t, good, func(b *wire.CertificateBody) { b.NotAfter += 365 * 24 * 3600 }),
			want: ErrBadCertSignature,
		},
		{
			name:   "tampered body: peer ID swapped",
			cert:   reSigned(t, good, func(b *wire.CertificateBody) { b.PeerId = []byte(other) }),
			remote: other,
			want:   ErrBadCertSignature,
		},
		{
			name: "tampered body: org swapped",
			cert: reSigned(t, mustIssue(t, cas["Org2"], CertificateFields{Network: "fabnet", Org: "Org2", PeerID: id, NotBefore: notBefore, NotAfter: notAfter}),
				func(b *wire.CertificateBody) { b.Org = "Org1" }),
			want: ErrBadCertSignature,
		},
		{
			name: "tampered body: unknown field appended",
			cert: &wire.Certificate{Body: append(bytes.Clone(good.GetBody()), 0x38, 0x01), Signature: good.GetSignature()},
			want: ErrBadCertSignature,
		},
		{
			name: "tampered signature",
			cert: &wire.Certificate{Body: good.GetBody(), Signature: flipBit(good.GetSignature())},
			want: ErrBadCertSignature,
		},
		{name: "nil certificate", cert: nil, want: ErrMalformedCert, detail: "no certificate"},
		{name: "empty body", cert: &wire.Certificate{Signature: good.GetSignature()}, want: ErrMalformedCert},
		{name: "body is not protobuf", cert: &wire.Certificate{Body: []byte{0xff, 0xff, 0xff}, Signature: good.GetSignature()}, want: ErrMalformedCert},
		{
			name: "oversized body",
			cert: reSigned(t, good, func(b *wire.CertificateBody) { b.Org = strings.Repeat("x", MaxCertificateBodySize) }),
			want: ErrMalformedCert, detail: "want 1 to 1024",
		},
		{name: "short signature", cert: &wire.Certificate{Body: good.GetBody(), Signature: good.GetSignature()[:10]}, want: ErrMalformedCert, detail: "signature of 10 bytes"},
		{name: "no signature", cert: &wire.Certificate{Body: good.GetBody()}, want: ErrMalformedCert},
		{
			name: "signed body without a network",
			cert: bodyCert(t, cas["Org1"], &wire.CertificateBody{Org: "Org1", PeerId: []byte(id), NotBefore: notBefore.Unix(), NotAfter: notAfter.Unix()}),
			want: ErrMalformedCert, detail: "no network name",
		},
		{
			name: "signed body without an org",
			cert: bodyCert(t, cas["Org1"], &wire.CertificateBody{Network: "fabnet", PeerId: []byte(id), NotBefore: notBefore.Unix(), NotAfter: notAfter.Unix()}),
			want: ErrMalformedCert, detail: "no org name",
		},
		{
			name: "signed body with a bad peer ID",
			cert: bodyCert(t, cas["Org1"], &wire.CertificateBody{Network: "fabnet", Org: "Org1", PeerId: []byte("nope"), NotBefore: notBefore.Unix(), NotAfter: notAfter.Unix()}),
			want: ErrMalformedCert, detail: "peer ID",
		},
		{
			name: "signed body with an empty validity window",
			cert: bodyCert(t, cas["Org1"], &wire.CertificateBody{Network: "fabnet", Org: "Org1", PeerId: []byte(id), NotBefore: notAfter.Unix(), NotAfter: notAfter.Unix()}),
			want: ErrMalformedCert, detail: "empty validity window",
		},
	}
	// A warm cache, which holds good's signature, must refuse every case
	// alike: only the CA signature check is ever answered from it.
	warm := NewCertCache(0)
	if _, err := warm.Verify(n, good, id, validNow); err != nil || warm.Len() != 1 {
		t.Fatalf("warming the cache: %v, %d entries", err, warm.Len())
	}
	verifiers := map[string]func(*Network, *wire.Certificate, peer.ID, time.Time) (Verified, error){
		"VerifyCertificate": VerifyCertificate,
		"CertCache.Verify":  warm.Verify,
	}
	for _, tt := range tests {
		for vname, verify := range verifiers {
			t.Run(tt.name+"/"+vname, func(t *testing.T) {
				remote, now := tt.remote, tt.now
				if remote == "" {
					remote = id
				}
				if now.IsZero() {
					now = validNow
				}
				got, err := verify(n, tt.cert, remote, now)
				if err == nil {
					t.Fatalf("VerifyCertificate accepted it: %+v", got)
				}
				if got != (Verified{}) {
					t.Errorf("VerifyCertificate returned content %+v with its error", got)
				}
				for _, s := range sentinels {
					if is := errors.Is(err, s); is != (s == tt.want) {
						t.Errorf("errors.Is(%q, %q) = %v", err, s, is)
					}
				}
				assertContainsAll(t, err.Error(), tt.detail)
			})
		}
	}
	if warm.Len() != 1 {
		t.Errorf("the cache holds %d certificates after refusing every case, want 1", warm.Len())
	}

	if _, err := VerifyCertificate(nil, good, id, validNow); err == nil {
		t.Error("VerifyCertificate with a nil network accepted a certificate")
	}
}

// otherNetwork is othernet, whose Org1 has its own CA.
func otherNetwork(t testing.TB) (*Network, map[string]crypto.PrivKey) {
	t.Helper()
	n, cas, err := GenerateNetwork("othernet", []string{"Org1"}, nil, seeded(200))
	if err != nil {
		t.Fatal(err)
	}
	return n, cas
}

func flipBit(b []byte) []byte {
	out := bytes.Clone(b)
	out[len(out)/2] ^= 0x01
	return out
}

func TestIssueCertificateRefuses(t *testing.T) {
	_, cas := testNetwork(t)
	_, id := mustPeer(t, 10)
	secp, _, err := crypto.GenerateSecp256k1Key(seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	with := func(edit func(*CertificateFields)) CertificateFields {
		f := fieldsFor(id)
		edit(&f)
		return f
	}
	tests := []struct {
		name   string
		ca     crypto.PrivKey
		fields CertificateFields
		want   string
	}{
		{name: "nil CA key", ca: nil, fields: fieldsFor(id), want: "nil CA key"},
		{name: "CA key not Ed25519", ca: secp, fields: fieldsFor(id), want: "CA key type Secp256k1, want Ed25519"},
		{name: "no network", ca: cas["Org1"], fields: with(func(f *CertificateFields) { f.Network = "" }), want: "missing network name"},
		{name: "no org", ca: cas["Org1"], fields: with(func(f *CertificateFields) { f.Org = "" }), want: "missing org name"},
		{name: "org name with a space", ca: cas["Org1"], fields: with(func(f *CertificateFields) { f.Org = "Org 1" }), want: `invalid org name "Org 1"`},
		{name: "no peer ID", ca: cas["Org1"], fields: with(func(f *CertificateFields) { f.PeerID = "" }), want: "invalid peer ID"},
		{name: "bad peer ID", ca: cas["Org1"], fields: with(func(f *CertificateFields) { f.PeerID = "nope" }), want: "invalid peer ID"},
		{name: "zero NotBefore", ca: cas["Org1"], fields: with(func(f *CertificateFields) { f.NotBefore = time.Time{} }), want: "must both be set"},
		{name: "zero NotAfter", ca: cas["Org1"], fields: with(func(f *CertificateFields) { f.NotAfter = time.Time{} }), want: "must both be set"},
		{name: "NotAfter before NotBefore", ca: cas["Org1"], fields: with(func(f *CertificateFields) { f.NotAfter = notBefore.Add(-time.Hour) }), want: "is not after NotBefore"},
		{name: "window under a second", ca: cas["Org1"], fields: with(func(f *CertificateFields) { f.NotAfter = notBefore.Add(500 * time.Millisecond) }), want: "is not after NotBefore"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := IssueCertificate(tt.ca, tt.fields)
			if err == nil {
				t.Fatalf("IssueCertificate issued %v", cert)
			}
			assertContainsAll(t, err.Error(), tt.want)
		})
	}
}

func TestCertificateFiles(t *testing.T) {
	n, cas := testNetwork(t)
	_, id := mustPeer(t, 10)
	cert := mustIssue(t, cas["Org1"], fieldsFor(id))
	dir := t.TempDir()
	path := filepath.Join(dir, "peer.cert")

	if err := WriteCertificate(path, cert, CreateOnly); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("-----BEGIN FABGOSSIP CERTIFICATE-----\n")) {
		t.Errorf("certificate file does not start with the PEM header:\n%s", data)
	}
	if info, err := os.Stat(path); err != nil || (runtime.GOOS != "windows" && info.Mode().Perm() != 0o644) {
		t.Errorf("certificate file mode %v, %v; want 0644", info.Mode().Perm(), err)
	}
	back, err := LoadCertificate(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyCertificate(n, back, id, validNow); err != nil || !proto.Equal(back, cert) {
		t.Errorf("loaded certificate differs or does not verify: %v", err)
	}
	if err := WriteCertificate(path, cert, CreateOnly); !errors.Is(err, fs.ErrExist) {
		t.Errorf("WriteCertificate over an existing file = %v, want fs.ErrExist", err)
	}
	if err := WriteCertificate(filepath.Join(dir, "bad.cert"), &wire.Certificate{}, CreateOnly); !errors.Is(err, ErrMalformedCert) {
		t.Errorf("WriteCertificate of an empty certificate = %v, want ErrMalformedCert", err)
	}

	rawProto, err := proto.Marshal(cert)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want error // nil: loads
	}{
		{name: "PEM", data: data},
		{name: "PEM with surrounding blank lines", data: append(append([]byte("\n\n"), data...), '\n')},
		{name: "bare protobuf", data: rawProto},
		{name: "PEM of another type", data: bytes.Replace(data, []byte("FABGOSSIP CERTIFICATE"), []byte("CERTIFICATE"), 2), want: ErrMalformedCert},
		{name: "broken PEM", data: data[:40], want: ErrMalformedCert},
		{name: "data after the PEM block", data: append(bytes.Clone(data), []byte("trailing")...), want: ErrMalformedCert},
		{name: "garbage", data: []byte("hello, world\n"), want: ErrMalformedCert},
		{name: "empty file", data: nil, want: ErrMalformedCert},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "peer.cert")
			if err := os.WriteFile(p, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := LoadCertificate(p)
			if tt.want == nil {
				if err != nil || !proto.Equal(got, cert) {
					t.Errorf("LoadCertificate = %v, %v; want the certificate", got, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("LoadCertificate = %v, want %v", err, tt.want)
			}
			assertContainsAll(t, err.Error(), p)
		})
	}
}
