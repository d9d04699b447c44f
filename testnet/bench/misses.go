package bench

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Push misses: for every (block, member) pair that push did not deliver
// first, what the tree did about that member, so a P_full_push below 1 can
// be traced to its cause without another run. fabgossip's tracers report
// the pushes and control entries every peer hands its transport
// (BatchSent) and each first arrival's sender; the recorder keeps, per
// pair, the first of each.

// maxPushMisses bounds the misses listed in one Result.
const maxPushMisses = 200

// PushMiss is one (block, member) pair whose first copy did not come by
// push. Times are milliseconds after the publish call; -1 means never.
type PushMiss struct {
	Channel  string `json:"channel"`
	Block    uint64 `json:"block"`
	Member   int    `json:"member"` // peer index
	Org      int    `json:"org"`
	External bool   `json:"external"`
	// ArrivedMs is the first arrival (by pull), -1 if the block never came;
	// From is the peer it came from.
	ArrivedMs float64 `json:"arrived_ms"`
	From      int     `json:"from"`
	// PushSentMs is when a peer first handed the transport a push frame
	// carrying the block for the member (an eager payload or a graft
	// answer), and PushSender which peer; a push sent before the pull
	// arrived means the pull won a race against the tree.
	PushSentMs float64 `json:"push_sent_ms"`
	PushSender int     `json:"push_sender"`
	// IHaveSentMs is when a peer first queued an IHAVE of the block's
	// number for the member, and GraftSentMs when the member first sent a
	// GRAFT for it, GraftTo to whom.
	IHaveSentMs float64 `json:"ihave_sent_ms"`
	IHaveSender int     `json:"ihave_sender"`
	GraftSentMs float64 `json:"graft_sent_ms"`
	GraftTo     int     `json:"graft_to"`
}

// pairTrace is what the tree did toward one member for one block.
type pairTrace struct {
	push, ihave, graft      time.Duration // first of each, since the recorder's start; 0 = none
	pusher, ihaver, graftTo int
}

type pairID struct {
	ch   int
	num  uint64
	peer int
}

// traced returns the trace of (ch, num, peer), creating it, or nil when the
// block was not published in the measured window. r.mu is held.
func (r *recorder) traced(ch int, num uint64, peer int) *pairTrace {
	if r.blocks[blockID{ch, num}] == nil {
		return nil
	}
	if r.traces == nil {
		r.traces = map[pairID]*pairTrace{}
	}
	id := pairID{ch, num, peer}
	t := r.traces[id]
	if t == nil {
		t = &pairTrace{pusher: -1, ihaver: -1, graftTo: -1}
		r.traces[id] = t
	}
	return t
}

// pushSent records that peer from handed its transport a push frame with
// block (ch, num) for peer to.
func (r *recorder) pushSent(ch int, num uint64, from, to int) {
	at := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if t := r.traced(ch, num, to); t != nil && t.push == 0 {
		t.push, t.pusher = at, from
	}
}

// ihaveSent records that from queued an IHAVE of (ch, num) for to.
func (r *recorder) ihaveSent(ch int, nums []uint64, from, to int) {
	r.eachTraced(ch, nums, to, func(t *pairTrace, at time.Duration) {
		if t.ihave == 0 {
			t.ihave, t.ihaver = at, from
		}
	})
}

// graftSent records that member from grafted (ch, num) from to.
func (r *recorder) graftSent(ch int, nums []uint64, from, to int) {
	r.eachTraced(ch, nums, from, func(t *pairTrace, at time.Duration) {
		if t.graft == 0 {
			t.graft, t.graftTo = at, to
		}
	})
}

// eachTraced calls f, under the recorder's lock and with the time now, on
// the trace of each of nums of channel ch at member.
func (r *recorder) eachTraced(ch int, nums []uint64, member int, f func(t *pairTrace, at time.Duration)) {
	at := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, num := range nums {
		if t := r.traced(ch, num, member); t != nil {
			f(t, at)
		}
	}
}

// pushMisses lists the pairs of E(b) whose first copy was not pushed, at most
// maxPushMisses, by channel, block and member, and how many there were. r.mu
// is held.
func (r *recorder) pushMisses() ([]PushMiss, int) {
	var out []PushMiss
	total := 0
	ms := func(d, t0 time.Duration) float64 {
		if d == 0 {
			return -1
		}
		return float64(d-t0) / float64(time.Millisecond)
	}
	for id, b := range r.blocks {
		ch := r.l.channels[id.ch]
		for _, p := range ch.members {
			a, ok := b.arrival[p]
			if !r.expects(id.ch, p) || (ok && a.push) {
				continue
			}
			total++
			m := PushMiss{
				Channel: ch.name, Block: id.num, Member: p, Org: r.l.org[p], External: r.l.external[p],
				ArrivedMs: -1, From: -1, PushSentMs: -1, PushSender: -1, IHaveSentMs: -1, IHaveSender: -1, GraftSentMs: -1, GraftTo: -1,
			}
			if ok {
				m.ArrivedMs, m.From = ms(a.at, b.t0), a.from
			}
			if t := r.traces[pairID{id.ch, id.num, p}]; t != nil {
				m.PushSentMs, m.PushSender = ms(t.push, b.t0), t.pusher
				m.IHaveSentMs, m.IHaveSender = ms(t.ihave, b.t0), t.ihaver
				m.GraftSentMs, m.GraftTo = ms(t.graft, b.t0), t.graftTo
			}
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b PushMiss) int {
		return cmp.Or(cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.Block, b.Block), cmp.Compare(a.Member, b.Member))
	})
	return out[:min(len(out), maxPushMisses)], total
}

// pushMissText sums up a Result's push misses in words, "" when it has
// none: how many were pulled while a push was already on its way (the pull
// raced the tree), and how many were never pushed, with or without an
// IHAVE and a GRAFT.
func pushMissText(x Result) string {
	if x.PushMissCount == 0 {
		return ""
	}
	var raced, later, announced, grafted, bare int
	for _, m := range x.PushMisses {
		switch {
		case m.PushSentMs >= 0 && m.ArrivedMs >= 0 && m.PushSentMs <= m.ArrivedMs:
			raced++
		case m.PushSentMs >= 0:
			later++
		case m.GraftSentMs >= 0:
			grafted++
		case m.IHaveSentMs >= 0:
			announced++
		default:
			bare++
		}
	}
	listed := ""
	if len(x.PushMisses) < x.PushMissCount {
		listed = fmt.Sprintf(" (the first %d classified)", len(x.PushMisses))
	}
	return fmt.Sprintf(" Push misses: %d (block, member) pairs%s: %d pulled while a push to them was already sent, %d pushed only after the pull, %d grafted and not answered in time, %d announced and not grafted, %d neither pushed nor announced.",
		x.PushMissCount, listed, raced, later, grafted, announced, bare)
}
