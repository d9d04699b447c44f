package identity

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// DefaultCertCacheSize is how many certificates a CertCache made with size 0
// remembers: every member of a large network, with room to spare.
const DefaultCertCacheSize = 4096

// CertCache remembers certificates whose CA signature checked out, so that a
// peer that sees the same certificate on every block and heartbeat checks its
// signature once: an Ed25519 verification costs about 50 µs, the lookup one
// SHA-256 over a few hundred bytes. Only the signature is remembered; every
// other check (network, org, peer, validity window) runs on every call, so
// an expired certificate is refused on a hit too.
//
// An entry is keyed by the CA key, the body and the signature together, so a
// network update that changes an org's CA is not answered from entries of
// the old one. Only signatures that verified are stored, and only an org CA
// can make one, so an attacker cannot fill the cache with garbage; it is
// bounded all the same, by dropping an arbitrary entry when full.
//
// The zero value is not usable; make one with NewCertCache. A nil *CertCache
// verifies every time. Safe for concurrent use.
type CertCache struct {
	max int
	mu  sync.Mutex
	ok  map[[sha256.Size]byte]struct{}
}

// NewCertCache returns a cache of at most size certificates
// (DefaultCertCacheSize when size <= 0).
func NewCertCache(size int) *CertCache {
	if size <= 0 {
		size = DefaultCertCacheSize
	}
	return &CertCache{max: size, ok: make(map[[sha256.Size]byte]struct{}, min(size, 256))}
}

// Verify is VerifyCertificate, with the CA signature check answered from
// the cache when the same certificate under the same CA key verified before.
func (c *CertCache) Verify(net *Network, cert *wire.Certificate, remote peer.ID, now time.Time) (Verified, error) {
	return verifyCertificate(net, cert, remote, now, c)
}

// Len is how many certificates the cache holds.
func (c *CertCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ok)
}

// signed reports whether ca signed cert's body, from memory when it can.
func (c *CertCache) signed(ca crypto.PubKey, cert *wire.Certificate) bool {
	if c == nil {
		return caSigned(ca, cert)
	}
	key, ok := certKey(ca, cert)
	if !ok {
		return caSigned(ca, cert)
	}
	c.mu.Lock()
	_, hit := c.ok[key]
	c.mu.Unlock()
	if hit {
		return true
	}
	if !caSigned(ca, cert) {
		return false
	}
	c.mu.Lock()
	if len(c.ok) >= c.max {
		for k := range c.ok { // an arbitrary one: the map's order is random
			delete(c.ok, k)
			break
		}
	}
	c.ok[key] = struct{}{}
	c.mu.Unlock()
	return true
}

func caSigned(ca crypto.PubKey, cert *wire.Certificate) bool {
	ok, err := ca.Verify(cert.GetBody(), cert.GetSignature())
	return err == nil && ok
}

// certKey is SHA-256 over the CA's raw key, the body and the signature, each
// length-prefixed so no two triples share an encoding.
func certKey(ca crypto.PubKey, cert *wire.Certificate) (k [sha256.Size]byte, ok bool) {
	raw, err := ca.Raw()
	if err != nil {
		return k, false
	}
	h := sha256.New()
	for _, b := range [][]byte{raw, cert.GetBody(), cert.GetSignature()} {
		var n [4]byte
		n[0], n[1], n[2], n[3] = byte(len(b)>>24), byte(len(b)>>16), byte(len(b)>>8), byte(len(b))
		h.Write(n[:])
		h.Write(b)
	}
	h.Sum(k[:0])
	return k, true
}
