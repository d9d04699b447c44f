package identity

import (
	"encoding/pem"
	"errors"
	"testing"
	"time"

	"github.com/fabgossip/fabgossip/transport/wire"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/crypto/pb"
	"google.golang.org/protobuf/proto"
)

// The seed corpora live in testdata/fuzz/<FuzzName>; `go test` runs them as
// regression tests, `go test -fuzz FuzzName` explores from them.

// FuzzParseNetwork: any input is either refused with *ConfigErrors naming the
// file, or accepted as a network that survives a Marshal round trip.
func FuzzParseNetwork(f *testing.F) {
	f.Add([]byte(configText(f, validConfig)))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := ParseNetwork("fuzz.yaml", data)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.File != "fuzz.yaml" {
				t.Fatalf("error %q is not a *ConfigError naming the file", err)
			}
			return
		}
		out, err := n.Marshal()
		if err != nil {
			t.Fatalf("accepted network does not marshal: %v", err)
		}
		back, err := ParseNetwork("fuzz.yaml", out)
		if err != nil {
			t.Fatalf("Marshal output does not parse: %v\n%s", err, out)
		}
		again, err := back.Marshal()
		if err != nil || string(again) != string(out) {
			t.Fatalf("round trip changed the network: %v\n%s\nthen\n%s", err, out, again)
		}
	})
}

// FuzzVerifyCertificate: any certificate is either refused with exactly one
// of the documented sentinels, or accepted only if everything checks out.
func FuzzVerifyCertificate(f *testing.F) {
	n, cas := testNetwork(f)
	_, id := mustPeer(f, 10)
	_, other := mustPeer(f, 11)
	good := mustIssue(f, cas["Org1"], fieldsFor(id))
	f.Add(good.GetBody(), good.GetSignature(), validNow.Unix(), false)
	f.Fuzz(func(t *testing.T, body, sig []byte, nowUnix int64, presentedByOther bool) {
		remote := id
		if presentedByOther {
			remote = other
		}
		now := time.Unix(nowUnix, 0)
		cert := &wire.Certificate{Body: body, Signature: sig}
		v, err := VerifyCertificate(n, cert, remote, now)
		if err != nil {
			matched := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					matched++
				}
			}
			if matched != 1 {
				t.Fatalf("error %q matches %d sentinels, want exactly 1", err, matched)
			}
			return
		}
		org, ok := n.Org(v.Org)
		switch {
		case !ok:
			t.Fatalf("accepted a certificate of unknown org %q", v.Org)
		case v.Network != n.Name():
			t.Fatalf("accepted a certificate of network %q", v.Network)
		case v.PeerID != remote:
			t.Fatalf("accepted a certificate of %s presented by %s", v.PeerID, remote)
		case now.Before(v.NotBefore) || !now.Before(v.NotAfter):
			t.Fatalf("accepted a certificate valid [%s, %s) at %s", v.NotBefore, v.NotAfter, now)
		}
		if ok, err := org.CA.Verify(body, sig); err != nil || !ok {
			t.Fatal("accepted a certificate the org's CA did not sign")
		}
	})
}

// FuzzLoadCertificateFile: any file content is either refused with
// ErrMalformedCert or decodes to a certificate that writes back to the same.
func FuzzLoadCertificateFile(f *testing.F) {
	_, cas := testNetwork(f)
	_, id := mustPeer(f, 10)
	raw, err := proto.Marshal(mustIssue(f, cas["Org1"], fieldsFor(id)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: raw}))
	f.Add(raw)
	f.Fuzz(func(t *testing.T, data []byte) {
		cert, err := parseCertificateFile(data)
		if err != nil {
			if !errors.Is(err, ErrMalformedCert) {
				t.Fatalf("error %q does not wrap ErrMalformedCert", err)
			}
			return
		}
		if _, err := DecodeCertificate(cert); err != nil {
			t.Fatalf("parsed certificate does not decode: %v", err)
		}
		out, err := proto.Marshal(cert)
		if err != nil {
			t.Fatal(err)
		}
		back, err := parseCertificateFile(pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: out}))
		if err != nil || !proto.Equal(back, cert) {
			t.Fatalf("certificate does not survive a write and read: %v", err)
		}
	})
}

// FuzzParseKey: any key file content is either refused or is an Ed25519 key
// that marshals back to a loadable key.
func FuzzParseKey(f *testing.F) {
	good, err := crypto.MarshalPrivateKey(mustKey(f, 1))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := parseKey(data)
		if err != nil {
			return
		}
		if key.Type() != pb.KeyType_Ed25519 {
			t.Fatalf("accepted a %s key", key.Type())
		}
		out, err := crypto.MarshalPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		back, err := parseKey(out)
		if err != nil || !crypto.KeyEqual(key, back) {
			t.Fatalf("key does not survive a round trip: %v", err)
		}
		sig, err := key.Sign([]byte("x"))
		if err != nil {
			t.Fatalf("accepted key cannot sign: %v", err)
		}
		if ok, err := key.GetPublic().Verify([]byte("x"), sig); err != nil || !ok {
			t.Fatal("accepted key's signatures do not verify")
		}
	})
}
