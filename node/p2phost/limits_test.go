package p2phost

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// TestLimitExempt: with only 127.0.0.1 exempt, peers dialling from another
// loopback address meet libp2p's limit of 8 concurrent connections per
// address, as peers on a network do, while those from 127.0.0.1 do not.
func TestLimitExempt(t *testing.T) {
	cfg := LocalConfig()
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.LimitExempt = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	target := newHost(t, cfg)
	dialFrom := func(ip string) error {
		c := LocalConfig()
		c.ListenAddrs = []string{fmt.Sprintf("/ip4/%s/tcp/0", ip)} // TCP dials leave from the listen address
		h := newHost(t, c)
		if err := h.Connect(context.Background(), addrsOver(target, ma.P_TCP)); err != nil {
			return err
		}
		for _, c := range target.Network().ConnsToPeer(h.ID()) {
			if got := c.RemoteMultiaddr().String(); got[:len("/ip4/")+len(ip)] != "/ip4/"+ip {
				t.Fatalf("connection from %s arrived from %s: the test does not test the limit", ip, got)
			}
		}
		return nil
	}
	refused := 0
	for range 12 {
		if dialFrom("127.0.0.2") != nil {
			refused++
		}
	}
	if refused != 12-8 {
		t.Fatalf("%d of 12 connections from one address refused, want 4 past the 8 allowed", refused)
	}
	for i := range 12 {
		if err := dialFrom("127.0.0.1"); err != nil {
			t.Fatalf("connection %d from the exempt 127.0.0.1 refused: %v", i, err)
		}
	}
}

func TestLimitExemptValidated(t *testing.T) {
	cfg := LocalConfig()
	cfg.LimitExempt = []netip.Prefix{{}}
	if err := cfg.Validate(); err == nil {
		t.Fatal("a zero prefix validated")
	}
}
