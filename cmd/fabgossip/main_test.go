package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fabgossip/fabgossip/node/store"
	"github.com/fabgossip/fabgossip/testnet"
	"github.com/fabgossip/fabgossip/testnet/bench"
)

// runCLI runs the command line in-process and returns the exit status and
// both outputs.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// wantOneLineError checks the CLI's promise for user mistakes: a non-zero
// exit and exactly one line on stderr that says what is wrong.
func wantOneLineError(t *testing.T, code int, stderr string, wantCode int, wantMsg ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("exit status %d, want %d (stderr %q)", code, wantCode, stderr)
	}
	if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr is not one line: %q", stderr)
	}
	if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
		t.Errorf("stderr has a stack trace: %q", stderr)
	}
	for _, m := range wantMsg {
		if !strings.Contains(stderr, m) {
			t.Errorf("stderr %q does not mention %q", stderr, m)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			args := append(strings.Fields(c.name), "--help")
			code, stdout, stderr := runCLI(t, args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			for _, want := range []string{"Usage: fabgossip " + c.name, "Example:\n  fabgossip " + c.name} {
				if !strings.Contains(stdout, want) {
					t.Errorf("help lacks %q:\n%s", want, stdout)
				}
			}
		})
	}
	code, stdout, _ := runCLI(t, "help")
	if code != 0 || !strings.Contains(stdout, "testnet") {
		t.Errorf("help: exit %d\n%s", code, stdout)
	}
}

func TestUserErrors(t *testing.T) {
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badYAML, []byte("network: n.yaml\nkey: k\ncertificate: c\ncolour: blue\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	_ = ln.Close()

	tests := []struct {
		name string
		args []string
		code int
		msg  []string
	}{
		{"no command", []string{"frobnicate"}, 2, []string{`unknown command "frobnicate"`}},
		{"unknown flag", []string{"keygen", "--colour", "blue"}, 2, []string{"flag provided but not defined: -colour", "--help"}},
		{"missing required flag", []string{"keygen"}, 2, []string{"--out is required"}},
		{"stray argument", []string{"status", "extra"}, 2, []string{`unexpected argument "extra"`}},
		{"missing config file", []string{"peer", "--config", filepath.Join(dir, "nope.yaml")}, 1, []string{"nope.yaml", "no such file"}},
		{"unknown field", []string{"peer", "--config", badYAML}, 1, []string{`bad.yaml:4: unknown field "colour"`}},
		{"bad flag override", []string{"peer", "--config", badYAML, "--log-level", "loud"}, 1, []string{"bad.yaml"}},
		{"peer not running", []string{"status", "--admin", closedAddr}, 1, []string{"connection refused"}},
		{"publish without data", []string{"publish", "--channel", "ch0"}, 2, []string{"--data", "--file"}},
		{"missing token file", []string{"status", "--token-file", filepath.Join(dir, "token")}, 1, []string{"token file"}},
		{"testnet out of range", []string{"testnet", "--orgs", "0"}, 2, []string{"orgs = 0"}},
		{"testnet WAN loss out of range", []string{"testnet", "--wan-loss", "1"}, 2, []string{"wan-loss = 1"}},
		{"testnet restart without a spare peer", []string{"testnet", "--restart", "--orgs", "1", "--peers", "1", "--external", "0", "--channels", "1"}, 2, []string{"publishes nothing"}},
		{"ca issue bad peer ID", []string{"ca", "issue", "--ca", "x", "--network", "y", "--org", "o", "--peer", "notapeer", "--out", "z"}, 2, []string{`--peer "notapeer"`}},
		{"network init bad channel", []string{"network", "init", "--dir", filepath.Join(dir, "n1"), "--channel", "ch0"}, 2, []string{"NAME=ORG"}},
		{"network init unknown org", []string{"network", "init", "--dir", filepath.Join(dir, "n2"), "--channel", "ch0=org1,org9"}, 1, []string{`unknown org "org9"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tc.args...)
			wantOneLineError(t, code, stderr, tc.code, tc.msg...)
		})
	}
}

func TestKeysAndCertificates(t *testing.T) {
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }

	code, stdout, stderr := runCLI(t, "network", "init", "--dir", path("net"), "--orgs", "2", "--peers", "1", "--external", "1")
	if code != 0 {
		t.Fatalf("network init: %s", stderr)
	}
	if !strings.Contains(stdout, "peer0.org1") || !strings.Contains(stdout, "ch1{org1}") {
		t.Errorf("network init output:\n%s", stdout)
	}
	code, _, stderr = runCLI(t, "network", "init", "--dir", path("net"))
	wantOneLineError(t, code, stderr, 1, "already exists")

	code, stdout, stderr = runCLI(t, "keygen", "--out", path("peer.key"))
	if code != 0 {
		t.Fatalf("keygen: %s", stderr)
	}
	id := strings.TrimSpace(stdout)
	code, _, stderr = runCLI(t, "keygen", "--out", path("peer.key"))
	wantOneLineError(t, code, stderr, 1, "already exists")

	netFile := path("net/network.yaml")
	code, _, stderr = runCLI(t, "ca", "issue", "--ca", path("net/org1/ca.key"), "--network", netFile,
		"--org", "org1", "--peer", id, "--out", path("peer.cert"))
	if code != 0 {
		t.Fatalf("ca issue: %s", stderr)
	}
	code, _, stderr = runCLI(t, "ca", "issue", "--ca", path("net/org1/ca.key"), "--network", netFile,
		"--org", "org7", "--peer", id, "--out", path("other.cert"))
	wantOneLineError(t, code, stderr, 1, `unknown org "org7"`, "org1, org2")
	code, _, stderr = runCLI(t, "ca", "issue", "--ca", path("net/org2/ca.key"), "--network", netFile,
		"--org", "org1", "--peer", id, "--out", path("other.cert"))
	wantOneLineError(t, code, stderr, 1, `is not the CA of org "org1"`)

	code, stdout, stderr = runCLI(t, "ca", "init", "--out", path("ca.key"))
	if code != 0 || !strings.HasPrefix(stdout, "CAES") {
		t.Fatalf("ca init: exit %d, %q %q", code, stdout, stderr)
	}

	// A peer whose key is not the certificate's peer.
	cfg := path("mismatch.yaml")
	conf := "network: net/network.yaml\nkey: net/org1/peer0/peer.key\ncertificate: peer.cert\nadmin:\n  address: \"\"\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, "peer", "--config", cfg)
	wantOneLineError(t, code, stderr, 1, "is for peer "+id+", but key file")
}

// TestDataDirInUse runs a peer on a data directory another process holds:
// one line naming the directory.
func TestDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runCLI(t, "network", "init", "--dir", dir, "--orgs", "1", "--peers", "1", "--external", "0")
	if code != 0 {
		t.Fatalf("network init: %s", stderr)
	}
	cfg := filepath.Join(dir, "org1", "peer0", "peer.yaml")
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "data_dir: data\n") {
		t.Errorf("peer.yaml has no data_dir:\n%s", data)
	}
	held, err := store.Open(filepath.Join(dir, "org1", "peer0", "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = held.Close() }()
	code, _, stderr = runCLI(t, "peer", "--config", cfg, "--admin", "off")
	wantOneLineError(t, code, stderr, 1, "data_dir "+filepath.Join(dir, "org1", "peer0", "data")+" is in use by another process")
}

// TestTestnetEndToEnd builds the binary and runs a small testnet of real
// processes: 2 orgs x 3 peers (1 external each), 2 channels (ch0 of both
// orgs, ch1 of org1 only), 50 blocks per channel.
func TestTestnetEndToEnd(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "fabgossip")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	report := filepath.Join(dir, "report.json")
	netDir := filepath.Join(dir, "net")
	cmd := exec.CommandContext(ctx, bin, "testnet", "--orgs", "2", "--peers", "3", "--external", "1",
		"--channels", "2", "--count", "50", "--rate", "25", "--dir", netDir, "--json", report)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("testnet: %v\n%s", err, out)
	}
	t.Logf("testnet output:\n%s", out)
	if !strings.Contains(string(out), "PASS") {
		t.Errorf("no PASS verdict")
	}

	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep testnet.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Passed || len(rep.Channels) != 2 || rep.Topology.PeersPerOrg != 3 {
		t.Fatalf("report: %+v", rep)
	}
	wantEligible := map[string]int{"ch0": 6, "ch1": 3}
	for _, c := range rep.Channels {
		if c.EligiblePeers != wantEligible[c.Name] || c.Published != 50 || c.Coverage != 1 || c.Leaks != 0 {
			t.Errorf("%s: %+v", c.Name, c)
		}
		if c.Amplification < 1 || c.LatencyP99Ms <= 0 {
			t.Errorf("%s: amplification %.2f, p99 %.1fms", c.Name, c.Amplification, c.LatencyP99Ms)
		}
	}
	// Every process is gone once the command returns: their logs are
	// complete, and each says it shut down.
	logs, err := filepath.Glob(filepath.Join(netDir, "*", "peer*", "peer.log"))
	if err != nil || len(logs) != 6 {
		t.Fatalf("peer logs: %v, %v", logs, err)
	}
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "shutting down") {
			t.Errorf("%s does not end with a graceful shutdown:\n%s", l, data)
		}
	}
}

func TestBenchRender(t *testing.T) {
	dir := t.TempDir()
	rep := bench.Report{
		Command:  "fabgossip bench --quick",
		Topology: bench.TopologySummary{Scale: "quick", Orgs: 1, PeersPerOrg: []int{2}},
		Results: []bench.Result{{System: bench.SystemDirect, BlockSize: 1024, Seed: 1, CovFinal: 1, Blocks: 2, BlocksFull: 1,
			TFullMs: []float64{30, 31}, TFullP50Ms: 30, TFullP99Ms: 31, TFullMaxMs: 31}},
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "r.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "bench", "--render", path)
	if code != 0 || !strings.Contains(out, "| direct | 1 KiB | 1 |") {
		t.Fatalf("render: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if strings.Contains(out, "| seed |") {
		t.Errorf("render printed the per-seed table without --verbose:\n%s", out)
	}
	code, out, errOut = runCLI(t, "bench", "--render", path, "--verbose")
	if code != 0 || !strings.Contains(out, "| direct | 1 KiB | 1 | 1.0000 |") || !strings.Contains(out, "| seed |") {
		t.Fatalf("render --verbose: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	svg := filepath.Join(dir, "r.svg")
	code, _, errOut = runCLI(t, "bench", "--render", path, "--plot", svg)
	if data, err := os.ReadFile(svg); code != 0 || err != nil || !strings.Contains(string(data), `data-system="direct"`) {
		t.Fatalf("render --plot: exit %d, stderr %q, read %v, svg %.200q", code, errOut, err, data)
	}
	code, _, errOut = runCLI(t, "bench", "--render", filepath.Join(dir, "missing.json"))
	wantOneLineError(t, code, errOut, 1, "missing.json")
}
