package node_test

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/fabgossip/fabgossip/internal/testpeer"
	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/node/admin"
)

// boundedLabels are the label names whose values come from a fixed set (an
// enum in the code, or the orgs and channels of the network config, with
// "other" for anything else). A label that names a peer, a block or an
// address would grow without bound and must not be added.
var boundedLabels = []string{"kind", "reason", "via", "path", "org", "channel", "protocol", "result"}

// TestMetricConventions lints every metric a peer registers (the node's, via
// node.WithRegisterer, and the admin Recorder's) with promlint: names, units,
// types and help. It also requires the fabgossip_ prefix and only bounded
// label names. Vectors are given one child each first, so that a metric
// nothing has observed yet is linted too.
func TestMetricConventions(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec := &recordingRegisterer{Registerer: reg}
	closeAll := newLintedPeer(t, rec)
	defer closeAll()
	if err := rec.materialize(); err != nil {
		t.Fatal(err)
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) == 0 {
		t.Fatal("the peer registered no metrics")
	}
	l := promlint.NewWithMetricFamilies(mfs)
	l.AddCustomValidations(prefixValidation, boundedLabelValidation)
	problems, err := l.Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// newLintedPeer builds, without starting it, a node on a loopback host with
// its metrics and an admin Recorder's registered with reg, and returns the
// function that closes both.
func newLintedPeer(t *testing.T, reg prometheus.Registerer) func() {
	t.Helper()
	id, h := testpeer.New(t, "lint")
	recorder, err := admin.NewRecorder(admin.ChannelNames(id.Network), reg)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(id, h, node.LocalConfig(),
		node.WithRegisterer(reg), node.WithTracer(recorder.NodeTracer()), node.WithTransportTracer(recorder.TransportTracer()))
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := errors.Join(n.Close(), h.Close()); err != nil {
			t.Error(err)
		}
	}
}

// prefixValidation requires the fabgossip_ prefix (STYLE.md).
func prefixValidation(mf *dto.MetricFamily) []error {
	if !strings.HasPrefix(mf.GetName(), "fabgossip_") {
		return []error{errors.New("name does not start with fabgossip_")}
	}
	return nil
}

// boundedLabelValidation refuses label names outside boundedLabels.
func boundedLabelValidation(mf *dto.MetricFamily) []error {
	var errs []error
	seen := map[string]bool{}
	for _, m := range mf.GetMetric() {
		for _, lp := range m.GetLabel() {
			name := lp.GetName()
			if !seen[name] && !slices.Contains(boundedLabels, name) {
				seen[name] = true
				errs = append(errs, fmt.Errorf("label %q is not in the bounded allow-list %v", name, boundedLabels))
			}
		}
	}
	return errs
}

// recordingRegisterer passes registrations on and remembers the collectors,
// so that the test can give every vector a child before gathering.
type recordingRegisterer struct {
	prometheus.Registerer
	collectors []prometheus.Collector
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	if err := r.Registerer.Register(c); err != nil {
		return err
	}
	r.collectors = append(r.collectors, c)
	return nil
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// variableLabels reads a Desc's variable label names from its String form
// (Desc has no accessor for them).
var variableLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)

// materialize creates one child, with placeholder label values, of every
// recorded vector.
func (r *recordingRegisterer) materialize() error {
	for _, c := range r.collectors {
		descs := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(descs); close(descs) }()
		for d := range descs {
			m := variableLabels.FindStringSubmatch(d.String())
			if m == nil {
				return fmt.Errorf("cannot read the labels of %s", d)
			}
			if m[1] == "" {
				continue
			}
			values := make([]string, len(strings.Split(m[1], ",")))
			for i := range values {
				values[i] = "x"
			}
			switch v := c.(type) {
			case *prometheus.CounterVec:
				v.WithLabelValues(values...)
			case *prometheus.GaugeVec:
				v.WithLabelValues(values...)
			case *prometheus.HistogramVec:
				v.WithLabelValues(values...)
			case *prometheus.SummaryVec:
				v.WithLabelValues(values...)
			default:
				return fmt.Errorf("%s: a %T with labels; add it here", d, c)
			}
		}
	}
	return nil
}
