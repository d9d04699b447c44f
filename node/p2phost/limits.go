package p2phost

import (
	"math"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/x/rate"
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
	if cfg.LimitExempt != nil {
		opts = append(opts, exemptOptions(cfg.LimitExempt)...)
	}
	return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limitConfig(cfg)), opts...)
}

// exemptOptions replace libp2p's loopback exemption from its limits per
// source address with prefixes. The subnet rates are libp2p v0.51's
// defaults (rcmgr keeps them unexported), so that only the exemption
// changes.
func exemptOptions(prefixes []netip.Prefix) []rcmgr.Option {
	v4, v6 := []rcmgr.NetworkPrefixLimit{}, []rcmgr.NetworkPrefixLimit{}
	var rates []rate.PrefixLimit
	for _, p := range prefixes {
		p = p.Masked()
		l := rcmgr.NetworkPrefixLimit{Network: p, ConnCount: math.MaxInt}
		if p.Addr().Is4() {
			v4 = append(v4, l)
		} else {
			v6 = append(v6, l)
		}
		rates = append(rates, rate.PrefixLimit{Prefix: p}) // a zero Limit is no limit
	}
	const burst = 16 // 2 × libp2p's 8 concurrent connections per address
	limiter := &rate.Limiter{
		NetworkPrefixLimits: rates,
		SubnetRateLimiter: rate.SubnetLimiter{
			IPv4SubnetLimits: []rate.SubnetLimit{{PrefixLength: 32, Limit: rate.Limit{RPS: 0.2, Burst: burst}}},
			IPv6SubnetLimits: []rate.SubnetLimit{
				{PrefixLength: 56, Limit: rate.Limit{RPS: 0.2, Burst: burst}},
				{PrefixLength: 48, Limit: rate.Limit{RPS: 0.5, Burst: 5 * burst}},
			},
			GracePeriod: time.Minute,
		},
	}
	return []rcmgr.Option{rcmgr.WithNetworkPrefixLimit(v4, v6), rcmgr.WithConnRateLimiters(limiter)}
}
