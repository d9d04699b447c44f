package peerconfig

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/node/identity"
)

// OrgLayout is one org of a Layout: how many peers, and how many of them
// (the first ones) are external.
type OrgLayout struct {
	Name     string
	Peers    int
	External int
}

// Layout is a whole network to generate into a directory: what `fabgossip
// network init` and the testnet write.
type Layout struct {
	Network  string
	Orgs     []OrgLayout
	Channels []identity.Channel
	// Validity is how long the certificates are valid from now (default one
	// year).
	Validity time.Duration
	// Rand is the source of keys (nil: crypto/rand).
	Rand io.Reader
	// Peer, when set, edits each peer's config before it is written (ports,
	// preset, bootstrap); GeneratedPeer says which peer it is. The paths it
	// finds are relative to the peer's directory.
	Peer func(p GeneratedPeer, c *Config)
}

// GeneratedPeer is one peer that WriteLayout generated.
type GeneratedPeer struct {
	// Name is "peer<k>.<org>"; Index is the position among all peers, K
	// among its org's.
	Name     string
	Index    int
	K        int
	Org      string
	External bool
	ID       peer.ID
	// Dir holds peer.key, peer.cert and peer.yaml; Config is peer.yaml.
	Dir    string
	Config string
}

// Validate reports every mistake in the layout, joined.
func (l Layout) Validate() error {
	var errs []error
	if len(l.Orgs) == 0 {
		errs = append(errs, errors.New("a network needs at least one org"))
	}
	for _, o := range l.Orgs {
		if o.Peers < 1 {
			errs = append(errs, fmt.Errorf("org %q: %d peers; want at least 1", o.Name, o.Peers))
		}
		if o.External < 0 || o.External > o.Peers {
			errs = append(errs, fmt.Errorf("org %q: %d external peers; want 0 to %d", o.Name, o.External, o.Peers))
		}
	}
	if l.Validity < 0 {
		errs = append(errs, fmt.Errorf("certificate validity %v; want a positive duration", l.Validity))
	}
	return errors.Join(errs...)
}

// WriteLayout generates the network l describes into dir (created if
// missing; existing files are never replaced): network.yaml, and per org
// <org>/ca.key and per peer <org>/peer<k>/{peer.key,peer.cert,peer.yaml}.
// It returns the peers in org order.
func WriteLayout(dir string, l Layout) ([]GeneratedPeer, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	validity := l.Validity
	if validity == 0 {
		validity = 365 * 24 * time.Hour
	}
	orgs := make([]string, len(l.Orgs))
	for i, o := range l.Orgs {
		orgs[i] = o.Name
	}
	net, caKeys, err := identity.GenerateNetwork(l.Network, orgs, l.Channels, l.Rand)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	netPath := filepath.Join(dir, "network.yaml")
	if err := identity.WriteNetwork(netPath, net, identity.CreateOnly); err != nil {
		return nil, err
	}

	now := time.Now()
	var peers []GeneratedPeer
	for _, o := range l.Orgs {
		orgDir := filepath.Join(dir, o.Name)
		if err := os.MkdirAll(orgDir, 0o755); err != nil {
			return nil, err
		}
		if err := identity.WriteKey(filepath.Join(orgDir, "ca.key"), caKeys[o.Name], identity.CreateOnly); err != nil {
			return nil, err
		}
		for k := range o.Peers {
			key, err := identity.GenerateKey(l.Rand)
			if err != nil {
				return nil, err
			}
			id, err := peer.IDFromPrivateKey(key)
			if err != nil {
				return nil, err
			}
			cert, err := identity.IssueCertificate(caKeys[o.Name], identity.CertificateFields{
				Network: l.Network, Org: o.Name, PeerID: id,
				NotBefore: now.Add(-time.Minute), NotAfter: now.Add(validity), Serial: uint64(len(peers) + 1),
			})
			if err != nil {
				return nil, err
			}
			g := GeneratedPeer{
				Name: fmt.Sprintf("peer%d.%s", k, o.Name), Index: len(peers), K: k,
				Org: o.Name, External: k < o.External, ID: id,
				Dir: filepath.Join(orgDir, fmt.Sprintf("peer%d", k)),
			}
			g.Config = filepath.Join(g.Dir, "peer.yaml")
			if err := os.MkdirAll(g.Dir, 0o755); err != nil {
				return nil, err
			}
			if err := identity.WriteKey(filepath.Join(g.Dir, "peer.key"), key, identity.CreateOnly); err != nil {
				return nil, err
			}
			if err := identity.WriteCertificate(filepath.Join(g.Dir, "peer.cert"), cert, identity.CreateOnly); err != nil {
				return nil, err
			}
			c := Default()
			c.Network = filepath.Join("..", "..", "network.yaml")
			c.Key, c.Certificate, c.External = "peer.key", "peer.cert", g.External
			if l.Peer != nil {
				l.Peer(g, c)
			}
			data, err := c.Marshal()
			if err != nil {
				return nil, err
			}
			if err := writeNew(g.Config, data); err != nil {
				return nil, err
			}
			peers = append(peers, g)
		}
	}
	return peers, nil
}

// writeNew writes a new file, refusing to replace one.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
