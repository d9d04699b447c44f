package bench

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/fabgossip/fabgossip/internal/shape"
)

// newMocknet builds the hosts the GossipSub and direct systems run on: one
// per peer of the layout (Ed25519 keys, as fabgossip's), plus the outsider
// at index l.peers() when outsider is set, every pair linked with the
// latencies of lat, none connected.
func newMocknet(l *layout, lat *shape.Latencies, seed uint64, outsider bool) (mocknet.Mocknet, []host.Host, error) {
	n := l.peers()
	if outsider {
		n++
	}
	keys, err := hostKeys(seed, n)
	if err != nil {
		return nil, nil, err
	}
	mn := mocknet.New()
	hosts := make([]host.Host, n)
	for i, key := range keys {
		addr := ma.StringCast(fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/4001", i>>16&0xff, i>>8&0xff, i&0xff))
		if hosts[i], err = mn.AddPeer(key, addr); err != nil {
			return nil, nil, errors.Join(err, mn.Close())
		}
	}
	for i := range hosts {
		for j := i + 1; j < n; j++ {
			lk, err := mn.LinkPeers(hosts[i].ID(), hosts[j].ID())
			if err != nil {
				return nil, nil, errors.Join(err, mn.Close())
			}
			lk.SetOptions(mocknet.LinkOptions{Latency: lat.Between(i, j)})
		}
	}
	return mn, hosts, nil
}

// hostKeys returns the Ed25519 keys of the n hosts of the GossipSub and
// direct systems, drawn from the seed.
func hostKeys(seed uint64, n int) ([]crypto.PrivKey, error) {
	var k [32]byte
	for i := range 8 {
		k[i] = byte(seed >> (8 * i))
	}
	copy(k[8:], "bench-hosts")
	rnd := rand.NewChaCha8(k)
	keys := make([]crypto.PrivKey, n)
	for i := range keys {
		key, _, err := crypto.GenerateEd25519Key(rnd)
		if err != nil {
			return nil, err
		}
		keys[i] = key
	}
	return keys, nil
}
