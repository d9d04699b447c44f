package transport

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// Inbound budgets. Every byte of push frames read from one peer, over all
// of its streams, takes tokens from that peer's bucket (Config.
// InboundBytesPerSecond, with a burst of two frames of MaxFrameSize). When
// the bucket is empty the peer's reader waits, so the peer is slowed by TCP
// flow control, never punished and never dropped: an honest peer at a burst
// loses nothing, and a flooding one gets no more than its share of this
// peer's CPU.

// maxBudgets bounds the buckets kept for peers with no stream open; a
// bucket that has refilled holds nothing worth keeping.
const maxBudgets = 4096

// budget returns from's inbound bucket, or nil when budgets are off.
func (t *Transport) budget(from peer.ID) *rate.Limiter {
	if t.cfg.InboundBytesPerSecond <= 0 {
		return nil
	}
	t.inMu.Lock()
	defer t.inMu.Unlock()
	if l, ok := t.budgets[from]; ok {
		return l
	}
	if len(t.budgets) >= maxBudgets {
		now := time.Now()
		for p, l := range t.budgets {
			if _, open := t.inbound[p]; !open && l.TokensAt(now) >= float64(l.Burst()) {
				delete(t.budgets, p)
			}
		}
	}
	l := rate.NewLimiter(rate.Limit(t.cfg.InboundBytesPerSecond), t.budgetBurst())
	if len(t.budgets) < maxBudgets {
		t.budgets[from] = l
	}
	return l
}

// budgetBurst is two frames of MaxFrameSize with their length prefixes.
func (t *Transport) budgetBurst() int { return 2 * (t.cfg.MaxFrameSize + 10) }

// spend waits until from's bucket has n tokens, or the transport closes.
func (t *Transport) spend(l *rate.Limiter, n int) error {
	if l == nil {
		return nil
	}
	return l.WaitN(t.ctx, min(n, l.Burst()))
}
