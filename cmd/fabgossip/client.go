package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fabgossip/fabgossip/node/admin"
)

// adminFlags are the flags of the commands that talk to a peer's admin API.
type adminFlags struct {
	url       *string
	tokenFile *string
}

func addAdminFlags(fs interface {
	String(name, value, usage string) *string
}) adminFlags {
	return adminFlags{
		url:       fs.String("admin", "http://127.0.0.1:9443", "the peer's admin API URL"),
		tokenFile: fs.String("token-file", "", "file holding the admin API's bearer token"),
	}
}

func (f adminFlags) client() (*admin.Client, error) {
	token, err := readTokenFile(*f.tokenFile)
	if err != nil {
		return nil, err
	}
	return admin.NewClient(*f.url, token, nil)
}

func runPublish(ctx context.Context, e *env, args []string) error {
	const name = "publish"
	fs := newFlagSet(name)
	af := addAdminFlags(fs)
	channel := fs.String("channel", "", "channel to publish on")
	data := fs.String("data", "", "block data (a string)")
	file := fs.String("file", "", `file whose content is the block data ("-": standard input)`)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	h := help{
		usage: "fabgossip publish --channel CH (--data TEXT | --file FILE) [--admin URL]",
		description: "Publishes a block on a channel through a running peer, which must be allowed to\n" +
			"publish on it. Prints the block's number and hash.",
		example: "fabgossip publish --admin http://127.0.0.1:9443 --channel ch0 --data 'hello'\n" +
			"tar c docs | fabgossip publish --channel ch0 --file -",
	}
	if err := parseFlags(e, name, fs, h, args, false); err != nil {
		return err
	}
	if *channel == "" {
		return usagef(name, "--channel is required")
	}
	if (*data == "") == (*file == "") {
		return usagef(name, "give exactly one of --data and --file")
	}
	body := []byte(*data)
	if *file != "" {
		var err error
		if body, err = readData(*file); err != nil {
			return err
		}
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	p, err := c.Publish(ctx, *channel, body)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(p)
	}
	fmt.Fprintf(e.stdout, "published block %d of %s (%d bytes, hash %s)\n", p.Number, p.Channel, p.Size, p.Hash)
	return nil
}

// readData reads a publish body, capped a little above the node's largest
// block so that the peer, not this command, names the limit.
func readData(path string) ([]byte, error) {
	const limit = 4 << 20
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer func() { _ = f.Close() }()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if len(data) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes; a block holds at most 3 MiB", path, limit)
	}
	return data, nil
}

func runStatus(ctx context.Context, e *env, args []string) error {
	const name = "status"
	fs := newFlagSet(name)
	af := addAdminFlags(fs)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	h := help{
		usage:       "fabgossip status [--admin URL] [--json]",
		description: "Shows a running peer's identity, addresses, channels with heights, and the peers\nit knows.",
		example:     "fabgossip status --admin http://127.0.0.1:9443",
	}
	if err := parseFlags(e, name, fs, h, args, false); err != nil {
		return err
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(e.stdout, st)
	return nil
}

func printStatus(w io.Writer, st *admin.Status) {
	fmt.Fprintf(w, "peer     %s\norg      %s (external: %v)\nnetwork  %s\n", st.PeerID, st.Org, st.External, st.Network)
	for _, a := range st.Addrs {
		fmt.Fprintf(w, "addr     %s\n", a)
	}
	fmt.Fprintf(w, "\nchannels\n")
	for _, c := range st.Channels {
		switch {
		case !c.Member:
			fmt.Fprintf(w, "  %-12s not a member (block envelopes received: %d)\n", c.Name, c.BlocksReceived)
		case !c.Joined:
			fmt.Fprintf(w, "  %-12s member, not joined\n", c.Name)
		default:
			fmt.Fprintf(w, "  %-12s height %-6d eligible peers %-3d delivered %d\n", c.Name, c.Height, c.Peers, c.BlocksDelivered)
		}
	}
	fmt.Fprintf(w, "\npeers (%d)\n", len(st.Peers))
	for _, p := range st.Peers {
		state := "alive"
		if !p.Alive {
			state = "dead"
		}
		ext := ""
		if p.External {
			ext = " external"
		}
		fmt.Fprintf(w, "  %s  %-8s %-5s%s  [%s]\n", p.ID, p.Org, state, ext, strings.Join(p.Channels, ","))
	}
}
