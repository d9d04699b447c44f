// Package testpeer builds, for tests, a one-org network and the identity and
// loopback host of one peer in it.
package testpeer

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/node/p2phost"
)

// New returns a network named name with one org, Org1, and one channel, ch0,
// the identity of a peer of Org1 certified for an hour, and a loopback host
// for it, closed when the test ends.
func New(t testing.TB, name string) (node.Identity, host.Host) {
	t.Helper()
	net, caKeys, err := identity.GenerateNetwork(name, []string{"Org1"},
		[]identity.Channel{{Name: "ch0", Orgs: []string{"Org1"}}}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := identity.IssueCertificate(caKeys["Org1"], identity.CertificateFields{
		Network: name, Org: "Org1", PeerID: id,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), Serial: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := p2phost.New(key, p2phost.LocalConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return node.Identity{Network: net, Key: key, Certificate: cert}, h
}
