package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/fabgossip/fabgossip/testnet"
)

func runHostile(ctx context.Context, e *env, args []string) error {
	const name = "hostile"
	fs := newFlagSet(name)
	short := fs.Bool("short", false, "CI's form: fewer frames per attack, a 3 s flood, and wall-time bounds (a genuine peer's admission, honest latency under flood) reported but not enforced")
	flood := fs.Duration("flood", 0, "how long the flood lasts (default 10s, 3s with --short)")
	dir := fs.String("dir", "", "generate the network here and keep the files, the peers' logs included (default: a temporary directory, removed on exit)")
	jsonPath := fs.String("json", "", "also write the report as JSON to this file")
	profile := fs.Bool("profile", false, "write the target's CPU and heap profiles (cpu.pprof, heap.pprof) into its directory; needs --dir")
	only := fs.String("only", "", "run only the attacks whose names contain one of these comma-separated words, e.g. \"flood\" (default: every attack)")
	logLevel := fs.String("log-level", "info", "the peers' log level (logs are peer.log in each peer's directory)")
	h := help{
		usage: "fabgossip hostile [flags]",
		description: "Attacks a peer as a hostile peer would and measures what it costs the peer.\n" +
			"A target and an honest peer run as processes on loopback; the attacks come from\n" +
			"this process: outsiders with keys of their own (unauthenticated push and pull\n" +
			"frames of 4 MiB of empty items, a garbage hello, stalled handshakes, 50 stallers\n" +
			"while a genuine peer joins, a flood) and admitted peers (forged blocks, frames over\n" +
			"the count caps). The target's RSS and CPU are read from /proc (Linux only). Prints\n" +
			"a table and exits non-zero if any attack broke its bound: RSS growth at most 2x the\n" +
			"bytes sent and 64 MiB, CPU beyond idle at most 50 ms per MiB sent, stalled\n" +
			"handshakes disconnected, forgers ejected, nothing answered to outsiders.",
		example: "fabgossip hostile\n" +
			"fabgossip hostile --short\n" +
			"fabgossip hostile --flood 30s --json hostile.json\n" +
			"fabgossip hostile --only \"honest traffic\"",
	}
	if err := parseFlags(e, name, fs, h, args, false); err != nil {
		return err
	}
	if *profile && *dir == "" {
		return usagef(name, "--profile needs --dir, where the profiles are kept")
	}
	start := time.Now()
	rep, err := testnet.RunHostile(ctx, testnet.HostileOptions{Short: *short, Flood: *flood, Dir: *dir, Only: *only, Profile: *profile, LogLevel: *logLevel, Out: e.stdout})
	if rep != nil && *jsonPath != "" {
		data, jerr := json.MarshalIndent(rep, "", "  ")
		if jerr == nil {
			jerr = os.WriteFile(*jsonPath, append(data, '\n'), 0o644)
		}
		if jerr != nil {
			return errors.Join(err, jerr)
		}
	}
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("interrupted after %.1fs; every peer stopped", time.Since(start).Seconds())
	}
	return err
}
