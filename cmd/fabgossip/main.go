// Command fabgossip runs fabgossip peers, makes their keys, certificates and
// network configs, talks to their admin API, and starts a local testnet of
// real processes. Run "fabgossip help" for the subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// commands are the subcommands, in the order the overview lists them.
var commands = []command{
	{"keygen", "make a peer key (libp2p Ed25519) and print its peer ID", runKeygen},
	{"ca init", "make an org CA key and print its public key for network.yaml", runCAInit},
	{"ca issue", "issue a membership certificate for a peer ID", runCAIssue},
	{"network init", "generate a whole network: config, CA keys, peer keys, certificates, peer configs", runNetworkInit},
	{"peer", "run a peer", runPeer},
	{"publish", "publish a block through a running peer's admin API", runPublish},
	{"status", "show a running peer's status", runStatus},
	{"testnet", "start a local network of peer processes and check dissemination", runTestnet},
	{"bench", "run the dissemination benchmark against Fabric-stock, GossipSub and direct delivery", runBench},
	{"hostile", "attack a peer as a hostile peer would and measure what it costs it", runHostile},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command line args and returns the exit status: 0 on success,
// 1 on failure, 2 on a usage error. Every failure is one line on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		overview(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, rest, ok := lookup(args)
	if !ok {
		fmt.Fprintf(stderr, "fabgossip: unknown command %q (see fabgossip help)\n", strings.Join(args[:min(2, len(args))], " "))
		return 2
	}
	err := cmd.run(ctx, e, rest)
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "fabgossip %s: %s\n", cmd.name, oneLine(err))
		return 2
	default:
		fmt.Fprintf(stderr, "fabgossip %s: %s\n", cmd.name, oneLine(err))
		return 1
	}
}

// lookup finds the longest command name that args start with.
func lookup(args []string) (command, []string, bool) {
	var best command
	words := 0
	for _, c := range commands {
		parts := strings.Fields(c.name)
		if len(parts) <= len(args) && len(parts) > words && strings.Join(args[:len(parts)], " ") == c.name {
			best, words = c, len(parts)
		}
	}
	return best, args[words:], words > 0
}

func overview(w io.Writer) {
	fmt.Fprintf(w, "fabgossip: Hyperledger Fabric's org- and channel-aware gossip on libp2p.\n\nUsage: fabgossip COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun \"fabgossip COMMAND --help\" for a command's flags and an example.\n"+
		"Start here: fabgossip testnet\n")
}
