package peerconfig_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/node/admin"
	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/node/peerconfig"
	"github.com/fabgossip/fabgossip/node/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const valid = `network: network.yaml
key: peer.key
certificate: peer.cert
`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error, in order of appearance
	}{
		{"empty", "", []string{"p.yaml: empty file"}},
		{"not YAML", "network: [", []string{"p.yaml: "}},
		{"unknown field", valid + "colour: blue\n", []string{`p.yaml:4: unknown field "colour"`}},
		{"unknown nested field", valid + "admin:\n  adress: x\n", []string{`p.yaml:5: unknown field "adress"`}},
		{"wrong type", valid + "external: maybe\n", []string{`p.yaml:4: "maybe" is not a valid boolean`}},
		{"bad duration", valid + "gossip:\n  pull_interval: soon\n", []string{`p.yaml:5: "soon" is not a valid duration`}},
		{"missing files", "external: true\n", []string{
			"p.yaml: network: missing", "p.yaml: key: missing", "p.yaml: certificate: missing",
		}},
		{"bad listen address", valid + "listen:\n  - /ip4/127.0.0.1/tcp/1\n  - tcp://x\n", []string{
			`p.yaml:6: listen[1]: "tcp://x" is not a multiaddr`,
		}},
		{"bootstrap without peer ID", valid + "bootstrap: [/ip4/10.0.0.1/tcp/7051]\n", []string{
			`p.yaml:4: bootstrap[0]: "/ip4/10.0.0.1/tcp/7051"`,
		}},
		{"bad admin address", valid + "admin:\n  address: localhost\n", []string{
			`p.yaml:5: admin.address: "localhost": want host:port`,
		}},
		{"bad limit_exempt", valid + "limit_exempt: [127.0.0.1/32, 10.0.0.1]\n", []string{
			`p.yaml:4: limit_exempt[1]: "10.0.0.1": want an address prefix`,
		}},
		{"bad log level", valid + "log:\n  level: loud\n", []string{`p.yaml:5: log.level: "loud"`}},
		{"bad log format", valid + "log:\n  format: xml\n", []string{`p.yaml:5: log.format: "xml"`}},
		{"empty data_dir", valid + "data_dir: \"\"\n", []string{`p.yaml:4: data_dir: empty`}},
		{"bad preset", valid + "gossip:\n  preset: fast\n", []string{`p.yaml:5: gossip.preset: "fast"`}},
		{"override out of range", valid + "gossip:\n  alive_time_interval: 1m\n", []string{
			"p.yaml:4: gossip: node: AliveExpirationTimeout",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := peerconfig.Parse("p.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			for _, w := range tc.want {
				i := strings.Index(msg, w)
				if i < 0 {
					t.Fatalf("error %q does not contain %q", msg, w)
				}
				msg = msg[i+len(w):]
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	c, err := peerconfig.Parse("p.yaml", []byte(valid+`external: true
channels: [ch0]
listen: [/ip4/127.0.0.1/tcp/0]
limit_exempt: [127.0.0.1/32, "::1/128"]
admin:
  address: ""
gossip:
  preset: local
  pull_interval: 250ms
  propagate_peer_num: 4
  dissemination: fabric
  chunk_size: 65536
  chunk_stripes: false
`))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := c.NodeConfig()
	if err != nil {
		t.Fatal(err)
	}
	if nc.PullInterval != 250*time.Millisecond || nc.PropagatePeerNum != 4 || nc.AliveTimeInterval != 500*time.Millisecond ||
		nc.Dissemination != node.DisseminationFabric || nc.ChunkSize != 64<<10 || nc.ChunkStripes {
		t.Errorf("node config: %+v", nc)
	}
	if c.Admin.Address != "" || !c.External || c.Log.Level != "info" || c.DataDir != peerconfig.DefaultDataDir {
		t.Errorf("config: %+v", c)
	}
	if hc := c.HostConfig(); len(hc.ListenAddrs) != 1 || hc.GaterBackoff != 10*time.Second ||
		len(hc.LimitExempt) != 2 || hc.LimitExempt[0].String() != "127.0.0.1/32" || hc.LimitExempt[1].String() != "::1/128" {
		t.Errorf("host config: %+v", hc)
	}
	// What Marshal writes, Parse reads back.
	data, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := peerconfig.Parse("again.yaml", data)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, data)
	}
	if nc2, _ := back.NodeConfig(); nc2 != nc {
		t.Errorf("round trip changed the node config: %+v", nc2)
	}
	if strings.Contains(string(data), "testnet") {
		t.Errorf("a config without shaping wrote a testnet section:\n%s", data)
	}
	if !strings.Contains(string(data), "data_dir: data\n") || back.DataDir != "data" {
		t.Errorf("data_dir not written or not read back (%q):\n%s", back.DataDir, data)
	}
	// A relative data_dir is relative to the config file, an absolute one is kept.
	c.Dir = filepath.Join("etc", "peer")
	if got := c.Path(c.DataDir); got != filepath.Join("etc", "peer", "data") {
		t.Errorf("data_dir resolves to %q", got)
	}
	c.DataDir = "/var/lib/fabgossip"
	if got := c.Path(c.DataDir); got != "/var/lib/fabgossip" {
		t.Errorf("absolute data_dir resolves to %q", got)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := peerconfig.Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("Load of a missing file: %v", err)
	}
}

// network writes a two-org network into a temporary directory: org1 with
// peers 0 (external) and 1, org2 with peer 2; ch0 is {org1, org2}, ch1 is
// {org1}. Every peer listens on a free loopback port.
func network(t *testing.T) []peerconfig.GeneratedPeer {
	t.Helper()
	peers, err := peerconfig.WriteLayout(t.TempDir(), peerconfig.Layout{
		Network: "cfgtest",
		Orgs:    []peerconfig.OrgLayout{{Name: "org1", Peers: 2, External: 1}, {Name: "org2", Peers: 1, External: 1}},
		Channels: []identity.Channel{
			{Name: "ch0", Orgs: []string{"org1", "org2"}},
			{Name: "ch1", Orgs: []string{"org1"}},
		},
		Peer: func(_ peerconfig.GeneratedPeer, c *peerconfig.Config) {
			c.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
			c.Admin.Address = "127.0.0.1:0"
			c.Gossip.Preset = peerconfig.PresetLocal
			c.Log.Level = "error"
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return peers
}

func load(t *testing.T, g peerconfig.GeneratedPeer) *peerconfig.Config {
	t.Helper()
	c, err := peerconfig.Load(g.Config)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewErrors(t *testing.T) {
	peers := network(t)
	tests := []struct {
		name string
		edit func(c *peerconfig.Config)
		want string
	}{
		{"key of another peer", func(c *peerconfig.Config) {
			c.Key = filepath.Join(peers[1].Dir, "peer.key")
		}, "is for peer " + peers[0].ID.String() + ", but key file"},
		{"missing certificate", func(c *peerconfig.Config) { c.Certificate = "nope.cert" }, "nope.cert: no such file"},
		{"network of another org set", func(c *peerconfig.Config) {
			other, _, err := identity.GenerateNetwork("cfgtest", []string{"org9"}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "other.yaml")
			if err := identity.WriteNetwork(path, other, identity.CreateOnly); err != nil {
				t.Fatal(err)
			}
			c.Network = path
		}, "certificate names an unknown org"},
		{"unknown channel", func(c *peerconfig.Config) { c.Channels = []string{"ch9"} }, `channels[0]: unknown channel "ch9"`},
		{"channel of other orgs", func(c *peerconfig.Config) {
			c.Certificate = filepath.Join(peers[2].Dir, "peer.cert")
			c.Key = filepath.Join(peers[2].Dir, "peer.key")
			c.Channels = []string{"ch1"}
		}, `org "org2" is not a member of channel "ch1"`},
		{"missing token file", func(c *peerconfig.Config) { c.Admin.TokenFile = "token" }, "admin token file"},
		{"missing shaping plan", func(c *peerconfig.Config) { c.Testnet.Shaping = "nope.json" }, "testnet.shaping: shaping plan: open"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := load(t, peers[0])
			tc.edit(c)
			p, err := peerconfig.New(c)
			if err == nil {
				_ = p.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestPortInUse(t *testing.T) {
	peers := network(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	port := ln.Addr().(*net.TCPAddr).Port

	c := load(t, peers[0])
	c.Listen = []string{"/ip4/127.0.0.1/tcp/" + strconv.Itoa(port)}
	if p, err := peerconfig.New(c); err == nil {
		_ = p.Close()
		t.Fatal("libp2p listen on a taken port succeeded")
	} else if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("libp2p port in use: %v", err)
	}

	c = load(t, peers[0])
	c.Admin.Address = ln.Addr().String()
	p, err := peerconfig.New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	if err := p.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("admin port in use: %v", err)
	}
}

func TestPeersRunAndTalk(t *testing.T) {
	peers := network(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	first, err := peerconfig.New(load(t, peers[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Close() }()
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	info := first.Info()
	if info.Org != "org1" || !info.External || info.AdminURL == "" || len(info.Addrs) == 0 {
		t.Fatalf("info: %+v", info)
	}

	var others []*peerconfig.Peer
	for _, g := range peers[1:] {
		c := load(t, g)
		c.Bootstrap = info.Addrs
		p, err := peerconfig.New(c)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = p.Close() }()
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		others = append(others, p)
	}

	client, err := admin.NewClient(info.AdminURL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for len(first.Node().ChannelPeers("ch0")) < 2 {
		select {
		case <-deadline:
			t.Fatal("peers did not meet")
		case <-tick.C:
		}
	}
	if _, err := client.Publish(ctx, "ch0", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	for _, p := range others {
		for h, _ := p.Node().Height("ch0"); h < 1; h, _ = p.Node().Height("ch0") {
			select {
			case <-deadline:
				t.Fatalf("peer %s did not deliver", p.Info().PeerID)
			case <-tick.C:
			}
		}
	}
	for _, p := range append(others, first) {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("second close: %v", err)
		}
	}
	if err := first.Start(ctx); err == nil {
		t.Errorf("Start after Close succeeded")
	}
}

// TestDataDir runs a peer on its data directory: a second peer on the same
// directory fails with ErrLocked while the first runs; after Close a new
// peer from the same config resumes at the stored height with the block.
func TestDataDir(t *testing.T) {
	peers := network(t)
	c := load(t, peers[0])
	first, err := peerconfig.New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Close() }()
	if err := first.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	published, err := first.Node().Publish(context.Background(), "ch0", []byte("kept"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(peers[0].Dir, "data", "blocks.db")); err != nil {
		t.Errorf("no store in the default data dir: %v", err)
	}

	second, err := peerconfig.New(load(t, peers[0]))
	if err == nil {
		_ = second.Close()
		t.Fatal("a second peer opened a data dir in use")
	}
	want := "data_dir " + filepath.Join(peers[0].Dir, "data") + " is in use by another process"
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("second peer on the data dir: %q, want one line with %q wrapping ErrLocked", err, want)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := peerconfig.New(load(t, peers[0]))
	if err != nil {
		t.Fatalf("restart on the data dir: %v", err)
	}
	defer func() { _ = again.Close() }()
	if h, err := again.Node().Height("ch0"); err != nil || h != 1 {
		t.Fatalf("height after restart: %d, %v; want 1", h, err)
	}
	blocks, err := again.Node().Blocks("ch0", 0, 10)
	if err != nil || len(blocks) != 1 || string(blocks[0].Data) != "kept" || !bytes.Equal(blocks[0].Hash, published.Hash) {
		t.Fatalf("blocks after restart: %+v, %v", blocks, err)
	}
	if err := again.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

// TestWithStore runs a peer on a store it is given: the data dir is never
// created, and Close leaves the store open for its owner.
func TestWithStore(t *testing.T) {
	peers := network(t)
	mem := store.NewMemory()
	p, err := peerconfig.New(load(t, peers[0]), peerconfig.WithStore(mem))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		_ = p.Close()
		t.Fatal(err)
	}
	if _, err := p.Node().Publish(context.Background(), "ch0", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(peers[0].Dir, "data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data dir created with WithStore: %v", err)
	}
	if h, err := mem.Height("ch0"); err != nil || h != 1 {
		t.Errorf("given store after Close: height %d, %v; want 1 and open", h, err)
	}
	if err := mem.Close(); err != nil {
		t.Error(err)
	}
}
