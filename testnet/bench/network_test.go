package bench

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fabgossip/fabgossip/internal/shape"
)

// tinyNetworkRun runs one system on the tiny topology with the network
// options of mod, and checks what every system must do on any network:
// every block to every member within 10 s, and no leak but GossipSub's (both
// rows) to its curious subscribers.
func tinyNetworkRun(t *testing.T, system string, mod func(*Options)) (*Report, Result) {
	t.Helper()
	o := tinyOptions(system)
	mod(&o)
	rep, err := Run(context.Background(), o, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	if r.Error != "" {
		t.Fatalf("%s failed: %s", system, r.Error)
	}
	if r.CovFinal != 1 {
		t.Errorf("%s: cov_final %v, want 1", system, r.CovFinal)
	}
	if strings.HasPrefix(system, SystemGossipSub) {
		if r.Leaks == 0 {
			t.Errorf("%s: no leak: the curious subscribers received nothing", system)
		}
	} else if r.Leaks != 0 {
		t.Errorf("%s: %d leaks, want 0", system, r.Leaks)
	}
	return rep, r
}

func TestEverySystemOverLoopbackTCP(t *testing.T) {
	for _, system := range AllSystems() {
		t.Run(system, func(t *testing.T) {
			rep, r := tinyNetworkRun(t, system, func(o *Options) { o.Network = NetworkTCP })
			if rep.Workload.Network != NetworkTCP || rep.Topology.Latency != tcpLatency || !strings.Contains(r.Config, "loopback TCP") {
				t.Errorf("the report does not say TCP: workload %q, latency %q, config %q", rep.Workload.Network, rep.Topology.Latency, r.Config)
			}
			for _, f := range r.FloorMs {
				if f != 0 {
					t.Errorf("floors %v, want 0 over TCP", r.FloorMs)
				}
			}
			md := rep.Markdown()
			if !strings.Contains(md, "Network: real loopback TCP") || !strings.Contains(md, "| n/a |") {
				t.Errorf("the markdown does not say TCP, or shows a ×floor:\n%s", md)
			}
			b, err := json.Marshal(rep)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), `"network":"tcp"`) {
				t.Errorf("JSON lacks the network")
			}
		})
	}
}

func TestEverySystemUnderAnEgressLimit(t *testing.T) {
	for _, system := range AllSystems() {
		t.Run(system, func(t *testing.T) {
			rep, r := tinyNetworkRun(t, system, func(o *Options) { o.EgressMbps = 100 })
			if rep.Workload.EgressMbps != 100 || !strings.Contains(r.Config, "egress limit 100 Mbit/s per host") ||
				!strings.Contains(rep.Markdown(), "egress limit 100 Mbit/s per host") {
				t.Errorf("the report does not show the limit: workload %v, config %q", rep.Workload.EgressMbps, r.Config)
			}
		})
	}
}

// The limit binds: direct's publisher (peer 0 publishes both channels)
// writes 5 + 2 copies of each of 5 blocks of 4 KiB, 140 KiB, through one
// bucket of 0.5 Mbit/s, so the last one cannot arrive before about 2 s after
// the first publish. A lower bound only: a slow machine cannot break it.
func TestEgressLimitSlowsTheDirectPublisher(t *testing.T) {
	_, r := tinyNetworkRun(t, SystemDirect, func(o *Options) { o.EgressMbps = 0.5 })
	e := shape.NewEgress(0.5)
	defer e.Stop()
	floor := time.Duration(float64(7*5*(4<<10)-shape.EgressBurst) / e.BytesPerSecond() * float64(time.Second))
	if r.PublishSeconds < floor.Seconds() {
		t.Errorf("publish window %.2f s, want ≥ %.2f s at 0.5 Mbit/s", r.PublishSeconds, floor.Seconds())
	}
}

func TestOptionsCheckTheNetwork(t *testing.T) {
	for _, o := range []Options{
		{Scale: ScaleS, Network: "udp"},
		{Scale: ScaleL, Network: NetworkTCP},
		{Scale: ScaleS, EgressMbps: -1},
	} {
		if _, err := o.withDefaults(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	o, err := (Options{Scale: ScaleQuick}).withDefaults()
	if err != nil || o.Network != NetworkPipe {
		t.Errorf("default network %q, %v; want %q", o.Network, err, NetworkPipe)
	}
}

// Under NetworkPipe the mocknet's links have no latency and every host delays
// its streams instead: the report says so, and no fabgossip block reaches its
// farthest member before the floor, so the latency is really applied. (The
// floor follows fabgossip's relay rule; GossipSub and direct delivery may
// take shorter paths.)
func TestEverySystemOverPipes(t *testing.T) {
	for _, system := range AllSystems() {
		t.Run(system, func(t *testing.T) {
			rep, r := tinyNetworkRun(t, system, func(o *Options) { o.Network = NetworkPipe })
			if rep.Workload.Network != NetworkPipe || !strings.HasSuffix(rep.Topology.Latency, pipeLatency) || !strings.Contains(r.Config, "(a pipe)") {
				t.Errorf("the report does not say pipe: workload %q, latency %q, config %q", rep.Workload.Network, rep.Topology.Latency, r.Config)
			}
			if system != SystemFabgossip && system != SystemFabgossipLocal && system != SystemFabricStock {
				return
			}
			lowest := 0.0
			for _, f := range r.FloorMs {
				if f <= 0 {
					t.Fatalf("floors %v, want the latency profile's", r.FloorMs)
				}
				if lowest == 0 || f < lowest {
					lowest = f
				}
			}
			if len(r.TFullMs) == 0 || r.TFullMs[0] < lowest {
				t.Errorf("fastest T_full %v ms, below the lowest floor %.1f ms: the latency was not applied", r.TFullMs[:min(1, len(r.TFullMs))], lowest)
			}
		})
	}
}
