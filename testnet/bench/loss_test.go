package bench

import (
	"context"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/fabgossip/fabgossip/transport"
)

func TestLossyProtocols(t *testing.T) {
	for pid, want := range map[protocol.ID]bool{
		transport.ProtocolPush:  true,
		ProtocolDirect:          true,
		"/meshsub/1.1.0":        true,
		"/meshsub/1.2.0":        true,
		"/floodsub/1.0.0":       true,
		transport.ProtocolHello: false,
		transport.ProtocolPull:  false,
		"/ipfs/id/1.0.0":        false,
		"/ipfs/ping/1.0.0":      false,
	} {
		if got := lossyProtocol(pid); got != want {
			t.Errorf("lossyProtocol(%s) = %v, want %v", pid, got, want)
		}
	}
	if newLoss(0, 1, nil) != nil || newLoss(0.2, 1, nil).Wrap(0, nil) == nil {
		t.Fatal("newLoss(0) must be nil and a real loss must wrap")
	}
}

// TestFabgossipRepairsUnderLoss: with 30% of the payload frames dropped,
// frames are dropped (counted in Drops), and fabgossip still delivers every
// block to every member, leaks nothing, and reports the loss table.
func TestFabgossipRepairsUnderLoss(t *testing.T) {
	o := tinyOptions(SystemFabgossip)
	o.Loss = 0.3
	rep, err := Run(context.Background(), o, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	if r.Error != "" {
		t.Fatal(r.Error)
	}
	if r.Drops[lossDrop] == 0 {
		t.Errorf("no frame dropped at 30%% loss: drops %v", r.Drops)
	}
	if r.CovFinal != 1 || r.Leaks != 0 {
		t.Errorf("cov_final %v leaks %d, want 1 and 0", r.CovFinal, r.Leaks)
	}
	if r.Cov1s < 0 || r.Cov1s > r.CovFinal || r.PFull1s > r.BlocksFull {
		t.Errorf("cov_1s %v P_full_1s %v against cov_final %v blocks_full %v", r.Cov1s, r.PFull1s, r.CovFinal, r.BlocksFull)
	}
	if md := rep.Short(); !strings.Contains(md, "Loss fault:") || !strings.Contains(md, "30% of payload frames") {
		t.Errorf("short report has no loss table:\n%s", md)
	}
	if err := rep.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestLossOutOfRangeRefused(t *testing.T) {
	for _, rate := range []float64{-0.1, 1, 2} {
		o := tinyOptions(SystemFabgossip)
		o.Loss = rate
		if _, err := Run(context.Background(), o, testWriter{t}); err == nil {
			t.Errorf("loss %v accepted", rate)
		}
	}
}

// TestCheckUnderLoss: under the loss fault fabric-stock's misses are the
// comparison, fabgossip's are still a failure, and without loss both are.
func TestCheckUnderLoss(t *testing.T) {
	results := func(sys string) []Result { return []Result{{System: sys, CovFinal: 0.98}} }
	for _, tt := range []struct {
		sys  string
		loss float64
		ok   bool
	}{
		{SystemFabricStock, 0.2, true},
		{SystemFabricStock, 0, false},
		{SystemFabgossip, 0.2, false},
		{SystemFabgossip, 0, false},
	} {
		r := &Report{Results: results(tt.sys), Workload: Workload{Loss: tt.loss}}
		if err := r.Check(); (err == nil) != tt.ok {
			t.Errorf("%s at loss %v with cov_final 0.98: Check() = %v, want ok %v", tt.sys, tt.loss, err, tt.ok)
		}
	}
}
