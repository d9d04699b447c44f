package p2phost

import (
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// baseLimit converts a StreamLimit to a fixed rcmgr limit: it is used with a
// zero BaseLimitIncrease, so AutoScale leaves it as configured.
func (l StreamLimit) baseLimit() rcmgr.BaseLimit {
	return rcmgr.BaseLimit{
		StreamsInbound:  l.StreamsInbound,
		StreamsOutbound: l.StreamsOutbound,
		Streams:         l.Streams,
		Memory:          l.Memory,
	}
}

// limitConfig is libp2p's default limits (with its own services' limits)
// scaled to this machine, plus the fabgossip protocol and service limits.
//
// The resource manager and the connection manager do not know about each
// other (go-libp2p issue #1640): if the resource manager refuses connections
// below the connection manager's high water mark, trimming never starts and
// new peers are refused instead. On small machines the scaled system
// connection limits can be that low, so they are raised to a quarter above
// the high water mark.
func limitConfig(cfg Config) rcmgr.ConcreteLimitConfig {
	limits := rcmgr.DefaultLimits // its maps are nil: the Add calls below allocate our own
	libp2p.SetDefaultServiceLimits(&limits)
	for _, p := range cfg.Protocols {
		limits.AddProtocolLimit(p.ID, p.Limit.baseLimit(), rcmgr.BaseLimitIncrease{})
		limits.AddProtocolPeerLimit(p.ID, p.PeerLimit.baseLimit(), rcmgr.BaseLimitIncrease{})
	}
	limits.AddServiceLimit(cfg.ServiceName, cfg.ServiceLimit.baseLimit(), rcmgr.BaseLimitIncrease{})
	limits.AddServicePeerLimit(cfg.ServiceName, cfg.ServicePeerLimit.baseLimit(), rcmgr.BaseLimitIncrease{})
	scaled := limits.AutoScale()

	floor := rcmgr.LimitVal(cfg.ConnMgrHighWater + cfg.ConnMgrHighWater/4)
	sys := scaled.ToPartialLimitConfig().System
	var raise rcmgr.PartialLimitConfig
	if sys.Conns > 0 && sys.Conns < floor {
		raise.System.Conns = floor
	}
	if sys.ConnsInbound > 0 && sys.ConnsInbound < floor {
		raise.System.ConnsInbound = floor
	}
	return raise.Build(scaled)
}

// newResourceManager builds the resource manager of limitConfig. With
// metrics off, the resource manager does not report to the (global)
// Prometheus collectors either.
func newResourceManager(cfg Config, metrics bool) (network.ResourceManager, error) {
	var opts []rcmgr.Option
	if !metrics {
		opts = append(opts, rcmgr.WithMetricsDisabled())
	}
	return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limitConfig(cfg)), opts...)
}
