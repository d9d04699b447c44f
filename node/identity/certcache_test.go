package identity

import (
	"errors"
	"testing"

	"github.com/fabgossip/fabgossip/transport/wire"
)

func TestCertCacheRemembersSignatures(t *testing.T) {
	n, cas := testNetwork(t)
	_, id := mustPeer(t, 10)
	fields := fieldsFor(id)
	cert := mustIssue(t, cas["Org1"], fields)

	c := NewCertCache(0)
	for i := range 3 {
		got, err := c.Verify(n, cert, id, validNow)
		if err != nil || got != Verified(fields) {
			t.Fatalf("call %d: Verify = %+v, %v; want %+v", i, got, err, fields)
		}
	}
	if c.Len() != 1 {
		t.Errorf("Len = %d after one certificate verified three times, want 1", c.Len())
	}
	// A hit still runs the other checks: the certificate expires.
	if _, err := c.Verify(n, cert, id, notAfter); !errors.Is(err, ErrExpired) {
		t.Errorf("Verify after NotAfter on a hit = %v, want ErrExpired", err)
	}
}

// A network update that gives an org a new CA must not be answered from
// signatures checked against the old one.
func TestCertCacheKeyedByCA(t *testing.T) {
	n, cas := testNetwork(t)
	_, id := mustPeer(t, 10)
	cert := mustIssue(t, cas["Org1"], fieldsFor(id))
	c := NewCertCache(0)
	if _, err := c.Verify(n, cert, id, validNow); err != nil {
		t.Fatal(err)
	}
	rotated, _, err := GenerateNetwork("fabnet", []string{"Org1", "Org2", "Org3"}, nil, seeded(101))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(rotated, cert, id, validNow); !errors.Is(err, ErrBadCertSignature) {
		t.Errorf("Verify under a rotated CA = %v, want ErrBadCertSignature", err)
	}
}

func TestCertCacheBounded(t *testing.T) {
	n, cas := testNetwork(t)
	c := NewCertCache(4)
	for seed := range byte(20) {
		_, id := mustPeer(t, 10+seed)
		if _, err := c.Verify(n, mustIssue(t, cas["Org1"], fieldsFor(id)), id, validNow); err != nil {
			t.Fatal(err)
		}
		if c.Len() > 4 {
			t.Fatalf("Len = %d after %d certificates, want at most 4", c.Len(), seed+1)
		}
	}
	if c.Len() != 4 {
		t.Errorf("Len = %d, want 4", c.Len())
	}
}

func TestNilCertCacheVerifies(t *testing.T) {
	n, cas := testNetwork(t)
	_, id := mustPeer(t, 10)
	good := mustIssue(t, cas["Org1"], fieldsFor(id))
	var c *CertCache
	if _, err := c.Verify(n, good, id, validNow); err != nil {
		t.Errorf("nil cache refused a good certificate: %v", err)
	}
	bad := &wire.Certificate{Body: good.GetBody(), Signature: flipBit(good.GetSignature())}
	if _, err := c.Verify(n, bad, id, validNow); !errors.Is(err, ErrBadCertSignature) {
		t.Errorf("nil cache on a tampered signature = %v, want ErrBadCertSignature", err)
	}
}

// The cost the cache saves on every block and heartbeat after the first:
// go test ./node/identity -run XXX -bench CertificateVerify
func BenchmarkCertificateVerify(b *testing.B) {
	n, cas := testNetwork(b)
	_, id := mustPeer(b, 10)
	cert := mustIssue(b, cas["Org1"], fieldsFor(id))
	b.Run("uncached", func(b *testing.B) {
		for b.Loop() {
			if _, err := VerifyCertificate(n, cert, id, validNow); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		c := NewCertCache(0)
		for b.Loop() {
			if _, err := c.Verify(n, cert, id, validNow); err != nil {
				b.Fatal(err)
			}
		}
	})
}
