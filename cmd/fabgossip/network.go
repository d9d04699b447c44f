package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/node/peerconfig"
	"github.com/fabgossip/fabgossip/testnet"
)

func runNetworkInit(_ context.Context, e *env, args []string) error {
	const name = "network init"
	fs := newFlagSet(name)
	dir := fs.String("dir", "", "directory to generate into (created; existing files are never replaced)")
	netName := fs.String("name", "fabnet", "network name")
	orgs := fs.Int("orgs", 3, "number of orgs (org1, org2, ...)")
	peers := fs.Int("peers", 4, "peers per org")
	external := fs.Int("external", 2, "external peers per org (the first ones)")
	var channels repeated
	fs.Var(&channels, "channel", "a channel as NAME=ORG,ORG[@PUBLISHER,...] (repeatable; default: ch0 = all orgs, published by org1, ch1 = all but the last org, published by org2)")
	local := fs.Bool("local", false, "make every peer runnable on this machine: loopback ports from --port, admin ports from --admin-port, bootstrap filled in, fast timings")
	port := fs.Int("port", 7051, "with --local: TCP and UDP port of the first peer; the others count up")
	adminPort := fs.Int("admin-port", 9443, "with --local: admin port of the first peer; the others count up")
	h := help{
		usage: "fabgossip network init --dir DIR [--orgs N --peers N --external N] [--channel SPEC]... [--local]",
		description: "Generates a network: network.yaml, one CA key per org (ORG/ca.key), and per peer\n" +
			"a key, a certificate and a peer config (ORG/peerK/peer.yaml), whose data_dir (the\n" +
			"block store, created when the peer first runs) is ORG/peerK/data. Without --local the\n" +
			"peer configs listen on 0.0.0.0:7051 and have no bootstrap list: copy each peer's\n" +
			"directory and network.yaml to its machine, keep the CA keys offline, and fill in\n" +
			"bootstrap (see the README).",
		example: "fabgossip network init --dir ./net --orgs 2 --peers 3 --external 1 \\\n" +
			"    --channel ch0=org1,org2@org1 --channel ch1=org1\n" +
			"fabgossip network init --dir ./local --local && fabgossip peer --config ./local/org1/peer0/peer.yaml",
	}
	if err := parseFlags(e, name, fs, h, args, false); err != nil {
		return err
	}
	switch {
	case *dir == "":
		return usagef(name, "--dir is required")
	case *orgs < 1:
		return usagef(name, "--orgs %d: want at least 1", *orgs)
	case *peers < 1:
		return usagef(name, "--peers %d: want at least 1", *peers)
	case *external < 0 || *external > *peers:
		return usagef(name, "--external %d: want 0 to --peers (%d)", *external, *peers)
	}
	orgNames := testnet.OrgNames(*orgs)
	chans := testnet.DefaultChannels(orgNames, min(2, *orgs))
	if len(channels) > 0 {
		chans = nil
		for _, spec := range channels {
			c, err := parseChannel(spec)
			if err != nil {
				return usagef(name, "--channel %q: %v", spec, err)
			}
			chans = append(chans, c)
		}
	}
	layout := peerconfig.Layout{Network: *netName, Channels: chans}
	for _, o := range orgNames {
		layout.Orgs = append(layout.Orgs, peerconfig.OrgLayout{Name: o, Peers: *peers, External: *external})
	}
	if *local {
		layout.Peer = localPeer(*port, *adminPort)
	}
	generated, err := writeLayout(*dir, layout, *local, *port)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "generated network %q in %s: %d orgs, %d peers, channels:", *netName, *dir, *orgs, len(generated))
	for _, c := range chans {
		fmt.Fprintf(e.stdout, " %s{%s}", c.Name, strings.Join(c.Orgs, ","))
	}
	fmt.Fprintln(e.stdout)
	for _, g := range generated {
		fmt.Fprintf(e.stdout, "  %-14s external=%-5v %s  %s\n", g.Name, g.External, g.ID, g.Config)
	}
	return nil
}

// writeLayout writes the layout; with local, it fills in the bootstrap lists
// first, which needs every peer's ID and so a second pass over the configs.
func writeLayout(dir string, l peerconfig.Layout, local bool, port int) ([]peerconfig.GeneratedPeer, error) {
	if !local {
		return peerconfig.WriteLayout(dir, l)
	}
	// The configs are written as generated; bootstrap addresses name peer IDs
	// that exist only once every key is made, so they are added afterwards.
	generated, err := peerconfig.WriteLayout(dir, l)
	if err != nil {
		return nil, err
	}
	return generated, addLocalBootstrap(generated, port)
}

// localPeer puts peer i on 127.0.0.1 at port+i (TCP and QUIC) with its admin
// API at adminPort+i and the local gossip preset.
func localPeer(port, adminPort int) func(peerconfig.GeneratedPeer, *peerconfig.Config) {
	return func(g peerconfig.GeneratedPeer, c *peerconfig.Config) {
		c.Listen = []string{
			fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port+g.Index),
			fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", port+g.Index),
		}
		c.Admin.Address = fmt.Sprintf("127.0.0.1:%d", adminPort+g.Index)
		c.Gossip.Preset = peerconfig.PresetLocal
	}
}

// addLocalBootstrap makes each peer bootstrap from the first peer of its
// org, and each org's first peer, when external, from the other orgs' first
// external peers.
func addLocalBootstrap(peers []peerconfig.GeneratedPeer, port int) error {
	first := map[string]peerconfig.GeneratedPeer{}
	for _, g := range peers {
		if _, ok := first[g.Org]; !ok {
			first[g.Org] = g
		}
	}
	addr := func(g peerconfig.GeneratedPeer) string {
		return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", port+g.Index, g.ID)
	}
	for _, g := range peers {
		c, err := peerconfig.Load(g.Config)
		if err != nil {
			return err
		}
		if f := first[g.Org]; f.Index != g.Index {
			c.Bootstrap = append(c.Bootstrap, addr(f))
		} else if g.External {
			for _, other := range peers {
				if other.Org != g.Org && other.External && first[other.Org].Index == other.Index {
					c.Bootstrap = append(c.Bootstrap, addr(other))
				}
			}
		}
		data, err := c.Marshal()
		if err != nil {
			return err
		}
		if err := replaceFile(g.Config, data); err != nil {
			return err
		}
	}
	return nil
}

// parseChannel parses NAME=ORG,ORG[@PUBLISHER,...].
func parseChannel(spec string) (identity.Channel, error) {
	name, rest, ok := strings.Cut(spec, "=")
	if !ok || name == "" || rest == "" {
		return identity.Channel{}, fmt.Errorf("want NAME=ORG,ORG[@PUBLISHER,...]")
	}
	members, pubs, _ := strings.Cut(rest, "@")
	c := identity.Channel{Name: name, Orgs: splitList(members)}
	if pubs != "" {
		c.Publishers = splitList(pubs)
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
