package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fabgossip/fabgossip/node/peerconfig"
)

func runPeer(ctx context.Context, e *env, args []string) (err error) {
	const name = "peer"
	fs := newFlagSet(name)
	configPath := fs.String("config", "", "peer config file (YAML; see fabgossip network init)")
	var listen, announce, bootstrap stringList
	fs.Var(&listen, "listen", "listen multiaddrs, replacing the config's (repeatable or comma-separated)")
	fs.Var(&announce, "announce", "announced multiaddrs, replacing the config's")
	fs.Var(&bootstrap, "bootstrap", "bootstrap multiaddrs ending in /p2p/<peer ID>, replacing the config's")
	mdns := fs.Bool("mdns", false, "turn mDNS discovery on (or off with --mdns=false)")
	dht := fs.Bool("dht", false, "turn DHT discovery on (or off with --dht=false)")
	adminAddr := fs.String("admin", "", `admin API host:port ("off" turns it off)`)
	logLevel := fs.String("log-level", "", "log level: debug, info, warn, error")
	logFormat := fs.String("log-format", "", "log format: text, json")
	readyFile := fs.String("ready-file", "", "once started, write the peer's ID, addresses and admin URL to this file as JSON (for scripts and the testnet)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the peer's whole run to this file (go tool pprof)")
	memProfile := fs.String("memprofile", "", "at shutdown, write a heap profile to this file")
	h := help{
		usage: "fabgossip peer --config FILE [flags]",
		description: "Runs a peer until SIGINT or SIGTERM, then shuts it down gracefully. Flags\n" +
			"override the config file's fields.",
		example: "fabgossip peer --config org1/peer0/peer.yaml \\\n" +
			"    --bootstrap /ip4/10.0.0.5/tcp/7051/p2p/12D3KooW... --log-level debug",
	}
	if err := parseFlags(e, name, fs, h, args, false); err != nil {
		return err
	}
	if *configPath == "" {
		return usagef(name, "--config is required")
	}
	cfg, err := peerconfig.Load(*configPath)
	if err != nil {
		return err
	}
	if len(listen) > 0 {
		cfg.Listen = listen
	}
	if len(announce) > 0 {
		cfg.Announce = announce
	}
	if len(bootstrap) > 0 {
		cfg.Bootstrap = bootstrap
	}
	if flagSet(fs, "mdns") {
		cfg.MDNS = *mdns
	}
	if flagSet(fs, "dht") {
		cfg.DHT = *dht
	}
	switch *adminAddr {
	case "":
	case "off":
		cfg.Admin.Address = ""
	default:
		cfg.Admin.Address = *adminAddr
	}
	if *logLevel != "" {
		cfg.Log.Level = *logLevel
	}
	if *logFormat != "" {
		cfg.Log.Format = *logFormat
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log, err := cfg.Logger(e.stderr)
	if err != nil {
		return err
	}
	stopProfiles, err := startProfiles(*cpuProfile, *memProfile)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopProfiles()) }()
	p, err := peerconfig.New(cfg, peerconfig.WithLogger(log))
	if err != nil {
		return err
	}
	if err := p.Start(ctx); err != nil {
		_ = p.Close()
		return err
	}
	if *readyFile != "" {
		data, err := json.Marshal(p.Info())
		if err == nil {
			err = replaceFile(*readyFile, data)
		}
		if err != nil {
			_ = p.Close()
			return fmt.Errorf("ready file: %w", err)
		}
	}
	<-ctx.Done()
	log.Info("shutting down")
	return p.Close()
}

// replaceFile writes data to path atomically: a reader sees the old file or
// the whole new one.
func replaceFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
