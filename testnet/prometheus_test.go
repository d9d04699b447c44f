package testnet

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestScrapeConfig checks that the scrape config names every peer's admin
// host:port with its peer labels, and refuses an admin URL Prometheus could
// not scrape.
func TestScrapeConfig(t *testing.T) {
	data, err := ScrapeConfig([]ScrapeTarget{
		{Peer: "peer0.org1", Org: "org1", External: true, AdminURL: "http://127.0.0.1:9443"},
		{Peer: "peer1.org1", Org: "org1", AdminURL: "http://127.0.0.1:9444/"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string          `yaml:"targets"`
				Labels  map[string]string `yaml:"labels"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if len(c.ScrapeConfigs) != 1 || c.ScrapeConfigs[0].MetricsPath != "/metrics" || len(c.ScrapeConfigs[0].StaticConfigs) != 2 {
		t.Fatalf("want one job over /metrics with two targets, got\n%s", data)
	}
	second := c.ScrapeConfigs[0].StaticConfigs[1]
	if len(second.Targets) != 1 || second.Targets[0] != "127.0.0.1:9444" ||
		second.Labels["peer"] != "peer1.org1" || second.Labels["peer_org"] != "org1" || second.Labels["external"] != "false" {
		t.Errorf("second target: got %+v", second)
	}

	for name, u := range map[string]string{"no scheme": "127.0.0.1:9443", "https": "https://127.0.0.1:9443", "empty": ""} {
		if _, err := ScrapeConfig([]ScrapeTarget{{Peer: "p", AdminURL: u}}); err == nil || !strings.Contains(err.Error(), "admin URL") {
			t.Errorf("%s (%q): got error %v, want one naming the admin URL", name, u, err)
		}
	}
}
