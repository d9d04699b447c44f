package identity

import (
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// GenerateNetwork makes a network with a fresh CA key per org, for the CLI's
// `network init`, the testnet and tests. It returns the network and the CA
// private keys by org name. orgs gives the org names in order; channels name
// their member and publisher orgs. Keys come from rand (nil: crypto/rand), in
// org order, so a seeded reader gives the same network every time. The error
// lists every mistake, as NewNetwork's does.
func GenerateNetwork(name string, orgs []string, channels []Channel, rand io.Reader) (*Network, map[string]crypto.PrivKey, error) {
	spec := NetworkSpec{Name: name, Channels: channels}
	caKeys := make(map[string]crypto.PrivKey, len(orgs))
	for _, org := range orgs {
		key, err := GenerateKey(rand)
		if err != nil {
			return nil, nil, fmt.Errorf("generate CA key of org %q: %w", org, err)
		}
		caKeys[org] = key
		spec.Orgs = append(spec.Orgs, Org{Name: org, CA: key.GetPublic()})
	}
	n, err := NewNetwork(spec)
	if err != nil {
		return nil, nil, err
	}
	return n, caKeys, nil
}
