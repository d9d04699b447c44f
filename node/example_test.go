package node_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/node/p2phost"
)

// Example runs two peers of one org on loopback TCP and QUIC: one publishes a
// block on a channel, the other delivers it.
func Example() {
	// A network of one org with one channel. A real deployment loads this
	// with identity.LoadNetwork and keeps the CA key offline.
	net, caKeys, err := identity.GenerateNetwork("example", []string{"Org1"},
		[]identity.Channel{{Name: "ch0", Orgs: []string{"Org1"}}}, rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	start := func() (*node.Node, *p2phost.Host) {
		key, err := identity.GenerateKey(rand.Reader)
		if err != nil {
			log.Fatal(err)
		}
		id, _ := peer.IDFromPrivateKey(key)
		cert, err := identity.IssueCertificate(caKeys["Org1"], identity.CertificateFields{
			Network: "example", Org: "Org1", PeerID: id,
			NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), Serial: 1,
		})
		if err != nil {
			log.Fatal(err)
		}
		h, err := p2phost.New(key, p2phost.LocalConfig())
		if err != nil {
			log.Fatal(err)
		}
		n, err := node.New(node.Identity{Network: net, Key: key, Certificate: cert}, h, node.LocalConfig(),
			node.WithGater(h.Gater()))
		if err != nil {
			log.Fatal(err)
		}
		if err := n.Start(); err != nil {
			log.Fatal(err)
		}
		if err := n.JoinChannel("ch0"); err != nil {
			log.Fatal(err)
		}
		return n, h
	}
	publisher, h1 := start()
	reader, h2 := start()
	defer func() {
		for _, c := range []interface{ Close() error }{publisher, reader, h1, h2} {
			_ = c.Close()
		}
	}()
	sub, err := reader.Subscribe("ch0")
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Bootstrap: the reader dials the publisher; the hello handshake and
	// StateInfo make each eligible for the channel at the other.
	if err := h2.Connect(ctx, h1.AddrInfo()); err != nil {
		log.Fatal(err)
	}
	for len(publisher.ChannelPeers("ch0")) == 0 {
		select {
		case <-ctx.Done():
			log.Fatal("the reader never became eligible")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if _, err := publisher.Publish(ctx, "ch0", []byte("hello, channel")); err != nil {
		log.Fatal(err)
	}
	b, err := sub.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("block %d on %s: %s\n", b.Number, b.Channel, b.Data)
	// Output: block 0 on ch0: hello, channel
}
