package main

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fabgossip/fabgossip/internal/testpeer"
	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/node/admin"
)

// TestDashboardMetricsExist checks, without Prometheus, that the dashboard
// loads, every template variable is substituted, and every fabgossip_ metric
// its queries name is one a peer registers (the node's and the admin
// Recorder's). A panel whose metric has not been observed yet returns no data
// in .ci/prometheus-check, or only its zero fallback, so only this test
// catches a rename there.
func TestDashboardMetricsExist(t *testing.T) {
	queries, err := Load("../fabgossip.json", "1m", ".*")
	if err != nil {
		t.Fatal(err)
	}
	registered := peerMetricNames(t)
	metric := regexp.MustCompile(`fabgossip_[a-z0-9_]+`)
	for _, q := range queries {
		if strings.Contains(q.Expr, "$") {
			t.Errorf("%s: a variable is left: %s", q.Name(), q.Expr)
		}
		names := metric.FindAllString(q.Expr, -1)
		if len(names) == 0 {
			t.Errorf("%s: names no fabgossip_ metric: %s", q.Name(), q.Expr)
		}
		for _, name := range names {
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok && registered[b] {
					base = b
				}
			}
			if !registered[base] {
				t.Errorf("%s: metric %s is not registered by a peer", q.Name(), name)
			}
		}
	}
}

// peerMetricNames returns the names of every metric a node and an admin
// Recorder register.
func peerMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	id, h := testpeer.New(t, "dash")
	rec := &describingRegisterer{Registerer: prometheus.NewRegistry(), names: map[string]bool{}}
	if _, err := admin.NewRecorder(admin.ChannelNames(id.Network), rec); err != nil {
		t.Fatal(err)
	}
	n, err := node.New(id, h, node.LocalConfig(), node.WithRegisterer(rec))
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(n.Close(), h.Close()); err != nil {
		t.Fatal(err)
	}
	return rec.names
}

// describingRegisterer passes registrations on and records the names of the
// registered collectors' descriptors.
type describingRegisterer struct {
	prometheus.Registerer
	names map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *describingRegisterer) Register(c prometheus.Collector) error {
	if err := r.Registerer.Register(c); err != nil {
		return err
	}
	descs := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(descs); close(descs) }()
	for d := range descs {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return nil
}

func (r *describingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}
