package discovery

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// mdnsNotifee hands peers found by mDNS to the dialer. mDNS calls it in a
// goroutine of its own per peer, which Close does not wait for; try returns
// at once after Close, so such a late call is harmless.
type mdnsNotifee struct{ d *Discovery }

// HandlePeerFound implements mdns.Notifee.
func (n mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	n.d.dials.try(SourceMDNS, ai)
}

// startMDNS advertises the host's current listen addresses under the
// network's service and looks for other peers of the network. Called with
// d.mu held, from Start.
func (d *Discovery) startMDNS() error {
	svc := mdns.NewMdnsService(d.h, d.cfg.mdnsService(), mdnsNotifee{d})
	if err := svc.Start(); err != nil {
		_ = svc.Close()
		return fmt.Errorf("discovery: mdns: %w", err)
	}
	d.mdns = svc
	return nil
}
