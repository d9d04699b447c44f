package node

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// chain builds n linked blocks of channel ch.
func chain(ch string, n int) []*block {
	var out []*block
	var prev []byte
	for i := range n {
		m := &wire.Block{Channel: ch, Number: uint64(i), PreviousHash: prev, DataHash: []byte{byte(i)}}
		b := &block{env: &wire.Envelope{}, msg: m, hash: BlockHash(m), size: 100}
		prev = b.hash
		out = append(out, b)
	}
	return out
}

func numbersOf(bs []*block) []uint64 {
	var out []uint64
	for _, b := range bs {
		out = append(out, b.msg.Number)
	}
	return out
}

func TestLedgerDeliversInOrderAcrossGaps(t *testing.T) {
	l := newLedger(100, 50)
	bs := chain("c", 5)
	for _, i := range []int{1, 3, 4} {
		if d, _ := addCommit(l, bs[i]); len(d) != 0 {
			t.Fatalf("block %d delivered before block 0", i)
		}
	}
	if d, _ := addCommit(l, bs[0]); !slices.Equal(numbersOf(d), []uint64{0, 1}) {
		t.Fatalf("after block 0: delivered %v, want [0 1]", numbersOf(d))
	}
	if d, _ := addCommit(l, bs[2]); !slices.Equal(numbersOf(d), []uint64{2, 3, 4}) {
		t.Fatalf("after block 2: delivered %v, want [2 3 4]", numbersOf(d))
	}
	if l.height != 5 {
		t.Fatalf("height %d, want 5", l.height)
	}
}

func TestLedgerCheck(t *testing.T) {
	l := newLedger(2, 10)
	for _, b := range chain("c", 4) {
		addCommit(l, b)
	}
	for _, tt := range []struct {
		n    uint64
		want error
	}{
		{0, errDuplicate}, // delivered and evicted from the window: still a duplicate
		{3, errDuplicate},
		{4, nil},
		{13, nil},
		{14, errTooFarAhead},
	} {
		if err := l.check(tt.n); !errors.Is(err, tt.want) {
			t.Errorf("check(%d) = %v, want %v", tt.n, err, tt.want)
		}
	}
}

func TestLedgerWindowEvicts(t *testing.T) {
	l := newLedger(3, 10)
	for _, b := range chain("c", 10) {
		addCommit(l, b)
	}
	if got := l.numbers(); !slices.Equal(got, []uint64{7, 8, 9}) {
		t.Fatalf("held %v, want the last 3", got)
	}
}

func TestLedgerRejectsBrokenLink(t *testing.T) {
	l := newLedger(10, 10)
	bs := chain("c", 3)
	forged := &wire.Block{Channel: "c", Number: 1, PreviousHash: []byte("not block 0")}
	addCommit(l, bs[0])
	d, broken := addCommit(l, &block{env: &wire.Envelope{}, msg: forged, hash: BlockHash(forged)})
	if len(d) != 0 || len(broken) != 1 {
		t.Fatalf("forged link: delivered %v, broken %d; want none delivered, one broken", numbersOf(d), len(broken))
	}
	if err := l.check(1); err != nil {
		t.Fatalf("the slot of a broken block must stay open for the right one: %v", err)
	}
	if d, _ := addCommit(l, bs[1]); !slices.Equal(numbersOf(d), []uint64{1}) {
		t.Fatalf("right block 1 not delivered: %v", numbersOf(d))
	}
}

func TestLedgerDigestMissingGet(t *testing.T) {
	l := newLedger(100, 100)
	bs := chain("c", 8)
	for _, i := range []int{0, 1, 2, 5, 6} {
		addCommit(l, bs[i])
	}
	var got [][2]uint64
	for _, r := range l.digest(time.Time{}) {
		got = append(got, [2]uint64{r.First, r.Last})
	}
	if len(got) != 2 || got[0] != [2]uint64{0, 2} || got[1] != [2]uint64{5, 6} {
		t.Fatalf("digest %v, want [[0 2] [5 6]]", got)
	}
	remote := []*wire.Range{{First: 0, Last: 7}}
	if m := l.missing(remote, 10); !slices.Equal(m, []uint64{3, 4, 7}) {
		t.Fatalf("missing %v, want [3 4 7]", m)
	}
	if m := l.missing(remote, 2); !slices.Equal(m, []uint64{3, 4}) {
		t.Fatalf("missing with limit 2: %v", m)
	}
	if g := get(l, remote, 2, 1<<20, nil); !slices.Equal(numbersOf(g), []uint64{0, 1}) {
		t.Fatalf("get count-bounded: %v", numbersOf(g))
	}
	if g := get(l, remote, 10, 250, nil); !slices.Equal(numbersOf(g), []uint64{0, 1}) {
		t.Fatalf("get byte-bounded (100 B each, 250 B budget): %v", numbersOf(g))
	}
	if g := get(l, remote, 10, 1, nil); len(g) != 1 {
		t.Fatalf("get with a budget below one block must still return one, got %d", len(g))
	}
}

// addCommit adds b and commits whatever became ready, as the node does
// once it has persisted them.
func addCommit(l *ledger, b *block) ([]*block, []*block) {
	run, broken := l.add(b)
	l.stage(run)
	l.commit(run)
	return run, broken
}

// get is what serving a fetch does: slots under the lock, then take.
func get(l *ledger, rs []*wire.Range, maxCount, maxBytes int, load func(uint64) *block) []*block {
	return take(l.slots(rs, maxCount*4, load != nil, time.Time{}), maxCount, maxBytes, load)
}

// TestLedgerStaging: staged blocks are duplicates but not yet delivered; a
// failed write takes them back and they are offered again, in order.
func TestLedgerStaging(t *testing.T) {
	l := newLedger(100, 50)
	bs := chain("c", 4)
	run, _ := l.add(bs[0])
	l.stage(run)
	run, _ = l.add(bs[1])
	if !slices.Equal(numbersOf(run), []uint64{1}) {
		t.Fatalf("after staging 0, ready = %v, want [1]", numbersOf(run))
	}
	l.stage(run)
	if l.height != 0 || l.staged != 2 {
		t.Fatalf("height %d staged %d, want 0 and 2", l.height, l.staged)
	}
	if err := l.check(0); !errors.Is(err, errDuplicate) {
		t.Fatalf("check(staged 0) = %v, want a duplicate", err)
	}
	l.unstage() // the writer failed
	if run, _ = l.ready(); !slices.Equal(numbersOf(run), []uint64{0, 1}) {
		t.Fatalf("after unstage, ready = %v, want [0 1]", numbersOf(run))
	}
	l.stage(run)
	l.commit(run)
	if l.height != 2 || l.staged != 2 || !bytes.Equal(l.lastHash, bs[1].hash) {
		t.Fatalf("after commit: height %d staged %d", l.height, l.staged)
	}
}

func TestLedgerGetLoadsWhatLeftTheWindow(t *testing.T) {
	l := newLedger(2, 10)
	bs := chain("c", 5)
	for _, b := range bs {
		addCommit(l, b)
	}
	var asked []uint64
	load := func(n uint64) *block {
		asked = append(asked, n)
		return bs[n]
	}
	got := get(l, []*wire.Range{{First: 0, Last: 9}}, 10, 1<<20, load)
	if !slices.Equal(numbersOf(got), []uint64{0, 1, 2, 3, 4}) {
		t.Fatalf("get = %v, want 0..4 (0-2 loaded, 3-4 from the window)", numbersOf(got))
	}
	if !slices.Equal(asked, []uint64{0, 1, 2}) {
		t.Fatalf("loaded %v, want only the evicted, delivered 0-2 (never a number at or above the height)", asked)
	}
}

// TestLedgerPullLeavesYoungBlocks: the digest and the slots a fetch is
// served from leave out the blocks that arrived after the settled time,
// and a young block still in the window is not read back from the store
// instead; a zero time leaves nothing out.
func TestLedgerPullLeavesYoungBlocks(t *testing.T) {
	l := newLedger(100, 100)
	bs := chain("c", 4)
	t0 := time.Unix(1000, 0)
	for i, b := range bs {
		b.at = t0.Add(time.Duration(i) * time.Second)
		addCommit(l, b)
	}
	settled := t0.Add(time.Second) // blocks 0 and 1 arrived by then
	var got [][2]uint64
	for _, r := range l.digest(settled) {
		got = append(got, [2]uint64{r.First, r.Last})
	}
	if len(got) != 1 || got[0] != [2]uint64{0, 1} {
		t.Fatalf("digest %v, want [[0 1]]", got)
	}
	all := []*wire.Range{{First: 0, Last: 3}}
	load := func(n uint64) *block { return bs[n] }
	slots := l.slots(all, 10, true, settled)
	if g := take(slots, 10, 1<<20, load); !slices.Equal(numbersOf(g), []uint64{0, 1}) {
		t.Fatalf("served %v, want [0 1]: young blocks neither from the window nor from the store", numbersOf(g))
	}
	if g := get(l, all, 10, 1<<20, nil); !slices.Equal(numbersOf(g), []uint64{0, 1, 2, 3}) {
		t.Fatalf("served %v with no settled time, want every block", numbersOf(g))
	}
}
