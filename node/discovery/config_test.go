package discovery

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	idA = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	idB = "12D3KooWGRYZDHBembyGJQqQ6WgLqJWYNjnECZDpf5eYqoLFe6u8"
)

func TestPresetsAreValidOnceNetworkIsSet(t *testing.T) {
	for name, cfg := range map[string]Config{"DefaultConfig": DefaultConfig(), "LocalConfig": LocalConfig()} {
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "Network") {
			t.Errorf("%s without Network: Validate() = %v, want a Network error", name, err)
		}
		cfg.Network = "fabnet"
		cfg.MDNS, cfg.DHT = true, true
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v", name, err)
		}
	}
}

func TestValidateNamesFieldAndValue(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"network with slash", func(c *Config) { c.Network = "a/b" }, `Network = "a/b"`},
		{"network too long", func(c *Config) { c.Network = strings.Repeat("n", 41) }, "Network ="},
		{"bootstrap without peer ID", func(c *Config) { c.Bootstrap = []string{"/ip4/10.0.0.5/tcp/7051/p2p/" + idA, "/ip4/10.0.0.6/tcp/7051"} },
			`Bootstrap[1]: discovery: address has no /p2p/<peer ID>: "/ip4/10.0.0.6/tcp/7051"`},
		{"bootstrap not a multiaddr", func(c *Config) { c.Bootstrap = []string{"10.0.0.5:7051"} }, `Bootstrap[0]: discovery: address "10.0.0.5:7051"`},
		{"public DHT prefix", func(c *Config) { c.DHT = true; c.DHTPrefix = "/ipfs" }, `DHTPrefix = "/ipfs"`},
		{"DHT prefix without slash", func(c *Config) { c.DHT = true; c.DHTPrefix = "fab" }, `DHTPrefix = "fab"`},
		{"zero advertise interval", func(c *Config) { c.AdvertiseInterval = 0 }, "AdvertiseInterval = 0s"},
		{"zero find interval", func(c *Config) { c.FindPeersInterval = 0 }, "FindPeersInterval = 0s"},
		{"zero query timeout", func(c *Config) { c.QueryTimeout = 0 }, "QueryTimeout = 0s"},
		{"zero backoff base", func(c *Config) { c.Backoff.Base = 0 }, "Backoff.Base = 0s"},
		{"backoff max below base", func(c *Config) { c.Backoff.Max = time.Millisecond }, "Backoff.Max = 1ms"},
		{"jitter above one", func(c *Config) { c.Backoff.Jitter = 1.5 }, "Backoff.Jitter = 1.5"},
		{"zero dial timeout", func(c *Config) { c.DialTimeout = 0 }, "DialTimeout = 0s"},
		{"zero dials", func(c *Config) { c.MaxConcurrentDials = 0 }, "MaxConcurrentDials = 0"},
		{"negative redial interval", func(c *Config) { c.CandidateRedialInterval = -time.Second }, "CandidateRedialInterval = -1s"},
		{"zero find limit", func(c *Config) { c.FindPeersLimit = 0 }, "FindPeersLimit = 0"},
		{"zero candidate TTL", func(c *Config) { c.CandidateAddrTTL = 0 }, "CandidateAddrTTL = 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Network = "fabnet"
			tt.modify(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want an error wrapping ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseAddrInfos(t *testing.T) {
	got, err := ParseAddrInfos([]string{
		"/ip4/10.0.0.5/tcp/7051/p2p/" + idA,
		"/ip4/10.0.0.6/tcp/7051/p2p/" + idB,
		"/ip4/10.0.0.5/udp/7051/quic-v1/p2p/" + idA,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID.String() != idA || got[1].ID.String() != idB {
		t.Fatalf("peers = %v, want [%s %s] in that order", got, idA, idB)
	}
	if len(got[0].Addrs) != 2 || got[0].Addrs[1].String() != "/ip4/10.0.0.5/udp/7051/quic-v1" {
		t.Fatalf("addresses of A = %v, want the TCP and the QUIC address without /p2p", got[0].Addrs)
	}

	_, err = ParseAddrInfos([]string{"/dns4/peer0.org1/tcp/7051"})
	if !errors.Is(err, ErrNoPeerID) || !strings.Contains(err.Error(), "/dns4/peer0.org1/tcp/7051") {
		t.Fatalf("address without /p2p: err = %v, want ErrNoPeerID naming the address", err)
	}
}

func TestNamesDerivedFromNetwork(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Network = "prod-1"
	if got := cfg.namespace(); got != "fabgossip/prod-1" {
		t.Errorf("namespace = %q", got)
	}
	if got := cfg.mdnsService(); got != "_fabgossip-prod-1._udp" {
		t.Errorf("mDNS service = %q", got)
	}
	cfg.Namespace = "custom"
	if got := cfg.namespace(); got != "custom" {
		t.Errorf("namespace override = %q", got)
	}
}
