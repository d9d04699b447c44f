package identity_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/libp2p/go-libp2p/core/peer"
)

// A network of two orgs, a peer of Org1 with its certificate, and the
// checks another peer makes when that peer says hello.
func Example() {
	net, caKeys, err := identity.GenerateNetwork("fabnet", []string{"Org1", "Org2"}, []identity.Channel{
		{Name: "ch0", Orgs: []string{"Org1", "Org2"}, Publishers: []string{"Org1"}},
	}, nil)
	if err != nil {
		panic(err)
	}

	peerKey, err := identity.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	id, err := peer.IDFromPrivateKey(peerKey)
	if err != nil {
		panic(err)
	}
	now := time.Now()
	cert, err := identity.IssueCertificate(caKeys["Org1"], identity.CertificateFields{
		Network: "fabnet", Org: "Org1", PeerID: id,
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(365 * 24 * time.Hour),
	})
	if err != nil {
		panic(err)
	}

	// On the receiving side: remote is the peer ID the secure channel proved.
	v, err := identity.VerifyCertificate(net, cert, id, now)
	if err != nil {
		panic(err)
	}
	fmt.Println(v.Org, "may publish on ch0:", net.MayPublish(v.Org, "ch0"))

	_, err = identity.VerifyCertificate(net, cert, id, now.Add(2*365*24*time.Hour))
	fmt.Println("a year later, expired:", errors.Is(err, identity.ErrExpired))
	// Output:
	// Org1 may publish on ch0: true
	// a year later, expired: true
}
