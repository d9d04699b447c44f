package testnet

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// ScrapeTarget is one peer's admin endpoint in a Prometheus scrape config.
type ScrapeTarget struct {
	// Peer and Org name the peer; they become the target labels peer and
	// peer_org (not org: that is a label of fabgossip_peers, which Prometheus
	// would rename to exported_org).
	Peer, Org string
	External  bool
	// AdminURL is the peer's admin API base URL, e.g. http://127.0.0.1:9443.
	AdminURL string
}

// ScrapeInterval is the scrape and evaluation interval of the testnet's
// Prometheus config: short, so that a check sees a rate within seconds.
const ScrapeInterval = "1s"

// ScrapeConfig returns a complete Prometheus configuration that scrapes
// /metrics of every target every ScrapeInterval, under the job
// fabgossip-testnet.
func ScrapeConfig(targets []ScrapeTarget) ([]byte, error) {
	type staticConfig struct {
		Targets []string          `yaml:"targets"`
		Labels  map[string]string `yaml:"labels"`
	}
	type scrapeConfig struct {
		JobName       string         `yaml:"job_name"`
		MetricsPath   string         `yaml:"metrics_path"`
		Scheme        string         `yaml:"scheme"`
		StaticConfigs []staticConfig `yaml:"static_configs"`
	}
	type config struct {
		Global struct {
			ScrapeInterval     string `yaml:"scrape_interval"`
			EvaluationInterval string `yaml:"evaluation_interval"`
		} `yaml:"global"`
		ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
	}
	var c config
	c.Global.ScrapeInterval, c.Global.EvaluationInterval = ScrapeInterval, ScrapeInterval
	job := scrapeConfig{JobName: "fabgossip-testnet", MetricsPath: "/metrics", Scheme: "http"}
	for _, t := range targets {
		u, err := url.Parse(t.AdminURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("scrape config: admin URL %q of %s: not an http://host:port URL", t.AdminURL, t.Peer)
		}
		if u.Scheme != "http" {
			return nil, fmt.Errorf("scrape config: admin URL %q of %s: scheme %q, want http", t.AdminURL, t.Peer, u.Scheme)
		}
		job.StaticConfigs = append(job.StaticConfigs, staticConfig{
			Targets: []string{u.Host},
			Labels:  map[string]string{"peer": t.Peer, "peer_org": t.Org, "external": strconv.FormatBool(t.External)},
		})
	}
	c.ScrapeConfigs = []scrapeConfig{job}
	return yaml.Marshal(c)
}

// writeScrapeConfig writes the scrape config of the running peers to
// r.o.Prometheus (atomically, so a reader never sees half a file). It is
// called once every peer is up and again after a restart, whose new process
// has a new admin port; Prometheus reads the file again on SIGHUP.
func (r *run) writeScrapeConfig() error {
	if r.o.Prometheus == "" {
		return nil
	}
	var targets []ScrapeTarget
	for _, p := range r.procs {
		targets = append(targets, ScrapeTarget{Peer: p.peer.Name, Org: p.peer.Org, External: p.peer.External, AdminURL: p.info.AdminURL})
	}
	data, err := ScrapeConfig(targets)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(r.o.Prometheus), ".prometheus-*.yml")
	if err != nil {
		return fmt.Errorf("writing the scrape config: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("writing the scrape config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the scrape config: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("writing the scrape config: %w", err)
	}
	if err := os.Rename(tmp.Name(), r.o.Prometheus); err != nil {
		return fmt.Errorf("writing the scrape config: %w", err)
	}
	fmt.Fprintf(r.o.Out, "testnet: Prometheus scrape config for %d peers written to %s\n", len(targets), r.o.Prometheus)
	return nil
}
