package testnet

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/node/peerconfig"
	"github.com/fabgossip/fabgossip/node/store"
)

// The restart scenario (ProcessOptions.Restarts): one peer that publishes
// nothing is killed with SIGKILL mid-stream and restarted from the same
// config and data directory, Restarts times. While it is down the harness
// opens its store itself: the store must open, and hold at least every block
// the harness saw the peer deliver. After the restart the peer's first
// delivery must be the block after the stored ones (nothing delivered twice,
// nothing skipped), and in the end it must hold every published block with
// the publisher's hash, like every other peer.

// restartCandidate picks the peer the restart scenario kills: one that
// publishes on no channel, in as many channels as possible, preferring one
// that is not its org's first peer (the others bootstrap from those). It
// returns its org and position K in the org, or false if every peer
// publishes.
func restartCandidate(orgs []string, peersPerOrg int, chans []identity.Channel) (string, int, bool) {
	bestOrg, bestK, bestScore := "", 0, -1
	for _, org := range orgs {
		for k := range peersPerOrg {
			publishes := false
			member := 0
			for i, c := range chans {
				if slices.Contains(c.Orgs, org) {
					member++
				}
				if c.Publishers[0] == org && publisherK(i, peersPerOrg) == k {
					publishes = true
				}
			}
			if publishes || member == 0 {
				continue
			}
			score := 2 * member
			if k != 0 {
				score++
			}
			if score > bestScore {
				bestOrg, bestK, bestScore = org, k, score
			}
		}
	}
	return bestOrg, bestK, bestScore >= 0
}

// restartStepAt is how many blocks must be published on every channel
// before restart step s (0-based; even steps kill, odd steps restart) of
// restarts cycles: the stream is cut in 2*restarts+1 equal parts, so with
// one restart the peer is killed after a third of the blocks and restarted
// after two thirds.
func restartStepAt(s, restarts, blocks int) int {
	return (s + 1) * blocks / (2*restarts + 1)
}

// restartRecord is what the harness saw of one kill and restart.
type restartRecord struct {
	killedAt, restartedAt, upAt time.Time
	channels                    []restartChannel // as r.channels; non-member channels are zero
}

// restartChannel is one channel of a restartRecord.
type restartChannel struct {
	member               bool
	publishedAtKill      int    // blocks published when the peer was killed
	seenBeforeKill       uint64 // consecutive deliveries the harness had seen
	storedHeight         uint64 // the store's height after the crash
	publishedAtRestart   int    // blocks published when the restarted peer was up
	heightAtRestart      uint64 // the restarted peer's height at its first status
	firstDeliveryChecked bool   // the restarted peer delivered, and the first was checked
	firstDeliveryAfter   uint64 // the number of the restarted peer's first delivery
}

// stepRestarts takes the next kill or restart step once enough blocks are
// published. It is called from the delivery loop, which it blocks while a
// restarted peer starts.
func (r *run) stepRestarts(ctx context.Context) error {
	if r.victim < 0 || r.restartSteps >= 2*r.o.Restarts {
		return nil
	}
	if r.minPublished() < restartStepAt(r.restartSteps, r.o.Restarts, r.o.Blocks) {
		return nil
	}
	var err error
	if r.restartSteps%2 == 0 {
		err = r.killVictim(ctx)
	} else {
		err = r.restartVictim(ctx)
	}
	r.restartSteps++
	return err
}

// restartsPending reports whether a kill or restart step is still to come,
// or the victim is down.
func (r *run) restartsPending() bool {
	return r.victim >= 0 && r.restartSteps < 2*r.o.Restarts
}

func (r *run) minPublished() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.o.Blocks
	for _, p := range r.published {
		n = min(n, len(p))
	}
	return n
}

// killVictim takes a last look at the victim (deliveries, metrics, that this
// life delivered exactly once from where it started), kills it with
// SIGKILL, and opens its store to check what the crash left.
func (r *run) killVictim(ctx context.Context) error {
	v := r.procs[r.victim]
	r.pollDeliveries(ctx)
	if text, err := v.client.Metrics(ctx); err == nil {
		if m, err := parseMetrics(text); err == nil {
			r.lostMetrics.add(m)
		}
	}
	r.checkLife(ctx, v, false)

	rec := &restartRecord{channels: make([]restartChannel, len(r.channels))}
	r.mu.Lock()
	for k, ch := range r.channels {
		rc := &rec.channels[k]
		rc.member = slices.Contains(ch.Orgs, v.peer.Org)
		rc.publishedAtKill = len(r.published[k])
		rc.seenBeforeKill = r.next[k][r.victim]
	}
	r.mu.Unlock()
	rec.killedAt = time.Now()
	if err := v.kill(); err != nil {
		return err
	}
	r.restarts = append(r.restarts, rec)

	cfg, err := peerconfig.Load(v.peer.Config)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(r.o.Out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := store.Open(cfg.Path(cfg.DataDir), append(cfg.StoreOptions(), store.WithLogger(log.With("store", v.peer.Name)))...)
	if err != nil {
		return fmt.Errorf("the store of %s does not open after SIGKILL: %w", v.peer.Name, err)
	}
	for k, ch := range r.channels {
		rc := &rec.channels[k]
		if !rc.member {
			continue
		}
		h, err := st.Height(ch.Name)
		if err != nil {
			_ = st.Close()
			return fmt.Errorf("the store of %s after SIGKILL: %w", v.peer.Name, err)
		}
		rc.storedHeight = h
		if h < rc.seenBeforeKill {
			r.restartProblems = append(r.restartProblems, fmt.Sprintf("%s: %s: the store holds %d blocks after SIGKILL, but the peer had delivered %d",
				v.peer.Name, ch.Name, h, rc.seenBeforeKill))
		}
	}
	return st.Close()
}

// restartVictim starts the killed peer again from its config and data
// directory and waits until it is up.
func (r *run) restartVictim(ctx context.Context) error {
	old := r.procs[r.victim]
	rec := r.restarts[len(r.restarts)-1]
	rec.restartedAt = time.Now()
	p, err := r.launch(old.peer, old.bootstrap)
	if err != nil {
		return err
	}
	r.procs[r.victim] = p
	if err := p.waitReady(ctx, time.Now().Add(r.o.StartTimeout)); err != nil {
		return fmt.Errorf("restarting %s: %w", p.peer.Name, err)
	}
	rec.upAt = time.Now()
	if err := r.writeScrapeConfig(); err != nil {
		return err
	}
	st, err := p.client.Status(ctx)
	if err != nil {
		return fmt.Errorf("status of restarted %s: %w", p.peer.Name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, ch := range r.channels {
		rc := &rec.channels[k]
		rc.publishedAtRestart = len(r.published[k])
		if !rc.member {
			continue
		}
		for _, cs := range st.Channels {
			if cs.Name == ch.Name {
				rc.heightAtRestart = cs.Height
			}
		}
		if rc.heightAtRestart < rc.storedHeight {
			r.restartProblems = append(r.restartProblems, fmt.Sprintf("%s: %s: restarted at height %d, below the %d blocks its store held",
				p.peer.Name, ch.Name, rc.heightAtRestart, rc.storedHeight))
		}
		r.lifeStart[k] = rc.storedHeight
	}
	r.fromStore = true
	return nil
}

// checkLife checks the delivery log of the victim's current process: its
// first delivery must be the block after those its store held when it
// started (block 0 for its first life). A block delivered again after a
// restart, or one skipped, fails the run. With final (no block in flight)
// it also checks that the process delivered each block from there to its
// height exactly once: as many deliveries as blocks.
func (r *run) checkLife(ctx context.Context, v *process, final bool) {
	life := len(r.restarts) // restarts before this life
	for k, ch := range r.channels {
		if !slices.Contains(ch.Orgs, v.peer.Org) {
			continue
		}
		list, err := v.client.Blocks(ctx, ch.Name, 0, 1, false)
		if err != nil {
			r.restartProblems = append(r.restartProblems, fmt.Sprintf("%s: %s: reading its delivery log: %v", v.peer.Name, ch.Name, err))
			continue
		}
		if len(list.Blocks) == 0 {
			continue // nothing delivered in this life
		}
		first := list.Blocks[0].Number
		if life > 0 {
			rc := &r.restarts[life-1].channels[k]
			rc.firstDeliveryChecked, rc.firstDeliveryAfter = true, first
		}
		if first != r.lifeStart[k] {
			r.restartProblems = append(r.restartProblems, fmt.Sprintf("%s: %s: after starting at height %d its first delivery was block %d",
				v.peer.Name, ch.Name, r.lifeStart[k], first))
		}
	}
	if !final {
		return
	}
	st, err := v.client.Status(ctx)
	if err != nil {
		r.restartProblems = append(r.restartProblems, fmt.Sprintf("%s: status: %v", v.peer.Name, err))
		return
	}
	for k, ch := range r.channels {
		for _, cs := range st.Channels {
			if cs.Name != ch.Name || !cs.Member {
				continue
			}
			if want := int64(cs.Height) - int64(r.lifeStart[k]); int64(cs.BlocksDelivered) != want {
				r.restartProblems = append(r.restartProblems, fmt.Sprintf("%s: %s: delivered %d blocks since its last start at height %d, up to height %d: want %d",
					v.peer.Name, ch.Name, cs.BlocksDelivered, r.lifeStart[k], cs.Height, want))
			}
		}
	}
}

// finishRestarts checks, once every block is in, that the victim's last
// process delivered exactly once from where its store left it.
func (r *run) finishRestarts(ctx context.Context) error {
	if r.victim < 0 {
		return nil
	}
	v := r.procs[r.victim]
	if v.exited() {
		return v.exitError()
	}
	r.checkLife(ctx, v, true)
	return nil
}

// restartReports describes every kill and restart; r.mu is held.
func (r *run) restartReports() []RestartReport {
	var out []RestartReport
	for n, rec := range r.restarts {
		rr := RestartReport{
			Peer:               r.peers[r.victim].Name,
			KilledAtSeconds:    rec.killedAt.Sub(r.start).Seconds(),
			RestartedAtSeconds: rec.restartedAt.Sub(r.start).Seconds(),
			UpAfterMs:          float64(rec.upAt.Sub(rec.restartedAt)) / float64(time.Millisecond),
		}
		for k, ch := range r.channels {
			rc := rec.channels[k]
			if !rc.member {
				continue
			}
			cr := RestartChannelReport{
				Name:               ch.Name,
				PublishedAtKill:    rc.publishedAtKill,
				SeenBeforeKill:     rc.seenBeforeKill,
				StoredHeight:       rc.storedHeight,
				PublishedAtRestart: rc.publishedAtRestart,
				HeightAtRestart:    rc.heightAtRestart,
			}
			if rc.firstDeliveryChecked {
				first := rc.firstDeliveryAfter
				cr.FirstDeliveryAfterRestart = &first
			}
			// Caught up: the restarted process delivered the last block
			// published by the time it was up, before any next kill.
			switch target := uint64(rc.publishedAtRestart); {
			case target <= rc.storedHeight:
				zero := 0.0
				cr.CaughtUpMs = &zero
			default:
				d, ok := r.delivered[k][r.victim][target-1]
				nextKill := int64(math.MaxInt64)
				if n+1 < len(r.restarts) {
					nextKill = r.restarts[n+1].killedAt.UnixNano()
				}
				if ok && d.at > 0 && d.at < nextKill {
					ms := float64(d.at-rec.restartedAt.UnixNano()) / float64(time.Millisecond)
					cr.CaughtUpMs = &ms
				}
			}
			rr.Channels = append(rr.Channels, cr)
		}
		out = append(out, rr)
	}
	return out
}
