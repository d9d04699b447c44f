package p2phost

import (
	"errors"
	"strings"
	"testing"
)

func TestPresetsAreValid(t *testing.T) {
	for name, cfg := range map[string]Config{"DefaultConfig": DefaultConfig(), "LocalConfig": LocalConfig()} {
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s().Validate() = %v, want nil", name, err)
		}
	}
}

func TestDefaultConfigListensOnFabricPort(t *testing.T) {
	got := DefaultConfig().ListenAddrs
	want := []string{"/ip4/0.0.0.0/tcp/7051", "/ip4/0.0.0.0/udp/7051/quic-v1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("ListenAddrs = %v, want %v", got, want)
	}
	ids := map[string]bool{}
	for _, p := range DefaultConfig().Protocols {
		ids[string(p.ID)] = true
	}
	for _, id := range []string{"/fabgossip/push/1.0.0", "/fabgossip/pull/1.0.0", "/fabgossip/hello/1.0.0"} {
		if !ids[id] {
			t.Errorf("DefaultConfig().Protocols lacks %s", id)
		}
	}
}

func TestValidateNamesFieldAndValue(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string // substring: field and value
	}{
		{"no listen address", func(c *Config) { c.ListenAddrs = nil }, "ListenAddrs = []"},
		{"bad listen address", func(c *Config) { c.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0", "tcp://x"} }, `ListenAddrs[1] = "tcp://x"`},
		{"listen address with peer ID", func(c *Config) {
			c.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/1/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"}
		}, "ListenAddrs[0]"},
		{"unsupported listen transport", func(c *Config) { c.ListenAddrs = []string{"/ip4/127.0.0.1/udp/0/webrtc-direct"} },
			`ListenAddrs[0] = "/ip4/127.0.0.1/udp/0/webrtc-direct": only TCP and QUIC v1`},
		{"listen address without transport", func(c *Config) { c.ListenAddrs = []string{"/ip4/127.0.0.1"} }, `ListenAddrs[0] = "/ip4/127.0.0.1"`},
		{"bad announce address", func(c *Config) { c.AnnounceAddrs = []string{"/ip4/300.1.1.1/tcp/1"} }, `AnnounceAddrs[0] = "/ip4/300.1.1.1/tcp/1"`},
		{"negative low water", func(c *Config) { c.ConnMgrLowWater = -1 }, "ConnMgrLowWater = -1"},
		{"high water not above low", func(c *Config) { c.ConnMgrHighWater = c.ConnMgrLowWater }, "ConnMgrHighWater = 160"},
		{"negative grace", func(c *Config) { c.ConnMgrGracePeriod = -1 }, "ConnMgrGracePeriod = -1ns"},
		{"zero gater back-off", func(c *Config) { c.GaterBackoff = 0 }, "GaterBackoff = 0s"},
		{"zero gater entries", func(c *Config) { c.GaterMaxEntries = 0 }, "GaterMaxEntries = 0"},
		{"protocol without slash", func(c *Config) { c.Protocols[1].ID = "fabgossip/pull" }, `Protocols[1].ID = "fabgossip/pull"`},
		{"protocol twice", func(c *Config) { c.Protocols[2].ID = c.Protocols[0].ID }, `Protocols[2].ID = "/fabgossip/push/1.0.0": is listed twice`},
		{"protocol zero inbound", func(c *Config) { c.Protocols[0].PeerLimit.StreamsInbound = 0 }, "Protocols[0].PeerLimit.StreamsInbound = 0"},
		{"protocol total below direction", func(c *Config) { c.Protocols[0].Limit.Streams = 1 }, "Protocols[0].Limit.Streams = 1"},
		{"protocol zero memory", func(c *Config) { c.Protocols[2].Limit.Memory = 0 }, "Protocols[2].Limit.Memory = 0"},
		{"empty service", func(c *Config) { c.ServiceName = "" }, `ServiceName = ""`},
		{"service zero outbound", func(c *Config) { c.ServiceLimit.StreamsOutbound = 0 }, "ServiceLimit.StreamsOutbound = 0"},
		{"service peer zero memory", func(c *Config) { c.ServicePeerLimit.Memory = -5 }, "ServicePeerLimit.Memory = -5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Validate() = %v, does not wrap ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLimitConfigRaisesSystemConnsAboveHighWater(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ConnMgrLowWater, cfg.ConnMgrHighWater = 9000, 10000
	sys := limitConfig(cfg).ToPartialLimitConfig().System
	if sys.Conns < 12500 || sys.ConnsInbound < 12500 {
		t.Fatalf("system conns = %d, inbound = %d; want both >= 12500 (high water + 25%%)", sys.Conns, sys.ConnsInbound)
	}
}
