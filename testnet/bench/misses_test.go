package bench

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// TestPushMisses: a pair whose first copy came by pull is listed with what
// the tree did toward its member, a pair reached by push is not, and the
// summary sorts the listed pair as a pull that raced a push already sent.
func TestPushMisses(t *testing.T) {
	// org0 = peers 0 (external, the publisher), 1, 2; org1 = peers 3 (external), 4, 5.
	l, err := newLayout(makeTopology(2, 3, [][]int{{0, 1}}))
	if err != nil {
		t.Fatal(err)
	}
	r := newRecorder(l)
	r.published(0, 7, 100)
	r.ihaveSent(0, []uint64{7}, 0, 2)
	r.pushSent(0, 7, 1, 2)
	r.graftSent(0, []uint64{7}, 2, 0)
	r.arrivedFrom(0, 7, 2, false, 1) // pulled from peer 1
	for _, p := range []int{1, 3, 4, 5} {
		r.arrivedFrom(0, 7, p, true, 0)
	}
	var res Result
	snap := r.snapshot()
	r.result(&res, window{idleFrom: snap, pubFrom: snap, pubTo: snap}, []time.Duration{0})
	if res.PushMissCount != 1 || len(res.PushMisses) != 1 {
		t.Fatalf("push misses %d listed %d, want 1 and 1", res.PushMissCount, len(res.PushMisses))
	}
	m := res.PushMisses[0]
	if m.Channel != "ch0" || m.Block != 7 || m.Member != 2 || m.Org != 0 || m.External || m.From != 1 {
		t.Fatalf("miss %+v, want ch0 block 7 member 2 of org 0, pulled from 1", m)
	}
	if m.PushSender != 1 || m.IHaveSender != 0 || m.GraftTo != 0 || m.PushSentMs < 0 || m.IHaveSentMs < 0 || m.GraftSentMs < 0 || m.ArrivedMs < m.PushSentMs {
		t.Fatalf("miss %+v: want the push by 1, the IHAVE by 0 and the graft to 0 recorded, before the arrival", m)
	}
	if s := pushMissText(res); !strings.Contains(s, "1 pulled while a push to them was already sent") {
		t.Fatalf("summary %q does not call it a race", s)
	}
}

func TestPeekBlockNumber(t *testing.T) {
	for _, num := range []uint64{0, 1, 300} {
		b, err := proto.Marshal(&wire.Message{Content: &wire.Message_Block{Block: &wire.Block{Channel: "ch2", Number: num, Data: []byte("x")}}})
		if err != nil {
			t.Fatal(err)
		}
		ch, got, ok := peekBlockNumber(b)
		if !ok || ch != "ch2" || got != num {
			t.Errorf("peekBlockNumber(block %d) = %q, %d, %v", num, ch, got, ok)
		}
	}
	if _, _, ok := peekBlockNumber([]byte{0xff}); ok {
		t.Error("garbage read as a block")
	}
}
