package discovery

import (
	"context"
	"fmt"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/protocol"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
)

// startDHT starts a server-mode DHT with our protocol prefix, seeded with
// the bootstrap peers only (never the public IPFS bootstrappers), and the
// advertise and lookup loops on the network's namespace. Called with d.mu
// held, from Start.
//
// Server mode because fabgossip peers are reachable servers: in the default
// auto mode a peer would wait for AutoNAT to confirm reachability before
// answering queries. Values are off: only provider records (routing
// discovery) are used, so peers do not store arbitrary values for others.
func (d *Discovery) startDHT() error {
	kad, err := dht.New(d.h,
		dht.Mode(dht.ModeServer),
		dht.ProtocolPrefix(protocol.ID(d.cfg.DHTPrefix)),
		dht.BootstrapPeers(d.bootstrap...),
		dht.DisableValues(),
	)
	if err != nil {
		return fmt.Errorf("discovery: dht: %w", err)
	}
	if err := kad.Bootstrap(d.ctx); err != nil {
		_ = kad.Close()
		return fmt.Errorf("discovery: dht bootstrap: %w", err)
	}
	d.dht = kad
	rd := drouting.NewRoutingDiscovery(kad)
	d.wg.Add(2)
	go d.runAdvertise(d.ctx, rd)
	go d.runFindPeers(d.ctx, rd)
	return nil
}

// runAdvertise advertises the namespace now and then every
// AdvertiseInterval (or at three quarters of the record TTL if sooner). A
// failure (typically an empty routing table right after start) is retried
// with Backoff.
func (d *Discovery) runAdvertise(ctx context.Context, rd *drouting.RoutingDiscovery) {
	defer d.wg.Done()
	ns := d.cfg.namespace()
	timer := time.NewTimer(0)
	defer timer.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		qctx, cancel := context.WithTimeout(ctx, d.cfg.QueryTimeout)
		ttl, err := rd.Advertise(qctx, ns)
		cancel()
		if ctx.Err() != nil {
			return
		}
		d.tracer.Advertised(ns, ttl, err)
		next := d.cfg.AdvertiseInterval
		if err != nil {
			next = d.backoff(failures)
			failures++
			d.log.Debug("dht advertise failed", "namespace", ns, "retry_in", next, "err", err)
		} else {
			failures = 0
			if ttl > 0 && ttl*3/4 < next {
				next = ttl * 3 / 4
			}
		}
		timer.Reset(next)
	}
}

// runFindPeers looks the namespace up every FindPeersInterval and hands
// what it finds to the dialer. A failed lookup is retried at the next tick.
func (d *Discovery) runFindPeers(ctx context.Context, rd *drouting.RoutingDiscovery) {
	defer d.wg.Done()
	ns := d.cfg.namespace()
	ticker := time.NewTicker(d.cfg.FindPeersInterval)
	defer ticker.Stop()
	for {
		d.findPeersOnce(ctx, rd, ns)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (d *Discovery) findPeersOnce(ctx context.Context, rd *drouting.RoutingDiscovery, ns string) {
	qctx, cancel := context.WithTimeout(ctx, d.cfg.QueryTimeout)
	defer cancel()
	found, err := rd.FindPeers(qctx, ns, discovery.Limit(d.cfg.FindPeersLimit))
	if err != nil {
		if ctx.Err() == nil {
			d.log.Debug("dht find peers failed", "namespace", ns, "err", err)
		}
		return
	}
	for ai := range found { // closed when the query ends or qctx is done
		if ai.ID == d.h.ID() {
			continue
		}
		d.dials.try(SourceDHT, ai)
	}
}
