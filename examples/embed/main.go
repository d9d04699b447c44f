// Command embed shows fabgossip inside an application that already runs its
// own libp2p host: the application builds the host (its transports, its
// resource manager, its own /myapp/echo/1.0.0 protocol), and adds a
// fabgossip node to it. Three such applications run in this process on
// loopback TCP; the first publishes blocks on channel ch0, every one
// receives them through Subscribe, and the echo protocol keeps working
// alongside. Run it with
//
//	go run ./examples/embed
//
// A real deployment loads the network, key and certificate from files
// (identity.LoadNetwork, LoadKey, LoadCertificate) and keeps the CA keys
// offline; here they are generated in memory.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/transport"
)

// The application's own protocol and the resource-manager service its
// streams are charged to.
const (
	echoProtocol protocol.ID = "/myapp/echo/1.0.0"
	echoService  string      = "myapp.echo"
)

// Shape of the demo: peers of one org, blocks published on one channel.
const (
	networkName = "embed"
	org         = "Org1"
	channel     = "ch0"
	peers       = 3
	blocks      = 5
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// app is one application: its host and the fabgossip node on it.
type app struct {
	host host.Host
	node *node.Node
}

// run starts the applications, exchanges blocks and echoes, and closes
// everything it started before it returns.
func run(ctx context.Context, out io.Writer) (err error) {
	net, caKeys, err := identity.GenerateNetwork(networkName, []string{org},
		[]identity.Channel{{Name: channel, Orgs: []string{org}}}, rand.Reader)
	if err != nil {
		return err
	}
	var apps []*app
	defer func() {
		// The node first (it uses the host), then the host.
		for _, a := range apps {
			err = errors.Join(err, a.node.Close(), a.host.Close())
		}
	}()
	for k := range peers {
		a, err := startApp(net, caKeys[org], k)
		if err != nil {
			return err
		}
		apps = append(apps, a)
	}

	// Bootstrapping is the application's business: here everyone dials the
	// first peer. fabgossip's hello handshake runs on every new connection.
	first := peer.AddrInfo{ID: apps[0].host.ID(), Addrs: apps[0].host.Addrs()}
	for _, a := range apps[1:] {
		if err := a.host.Connect(ctx, first); err != nil {
			return fmt.Errorf("connect to the first peer: %w", err)
		}
	}

	// The application's protocol works alongside fabgossip's.
	reply, err := echo(ctx, apps[1].host, apps[0].host.ID(), "ping from the app")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "echo: %s\n", reply)

	subs := make([]*node.Subscription, len(apps))
	for i, a := range apps {
		if subs[i], err = a.node.Subscribe(channel); err != nil {
			return err
		}
		defer subs[i].Close()
	}
	// Publishing does not wait for the others to be eligible: what push
	// cannot reach yet, pull repairs once their StateInfo arrives.
	for i := range blocks {
		if _, err := apps[0].node.Publish(ctx, channel, fmt.Appendf(nil, "block payload %d", i)); err != nil {
			return err
		}
	}
	for i, sub := range subs {
		for range blocks {
			b, err := sub.Next(ctx)
			if err != nil {
				return fmt.Errorf("peer %d: %w", i, err)
			}
			fmt.Fprintf(out, "peer %d: block %d on %s: %s\n", i, b.Number, b.Channel, b.Data)
		}
	}
	return nil
}

// startApp builds application k: a key and a certificate from the org's CA,
// a libp2p host of its own, its echo handler, and a fabgossip node joined to
// the channel.
func startApp(net *identity.Network, caKey crypto.PrivKey, k int) (*app, error) {
	key, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	cert, err := identity.IssueCertificate(caKey, identity.CertificateFields{
		Network: networkName, Org: org, PeerID: id,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour), Serial: uint64(k + 1),
	})
	if err != nil {
		return nil, err
	}
	h, err := newHost(key)
	if err != nil {
		return nil, err
	}
	h.SetStreamHandler(echoProtocol, handleEcho)

	// The node must run on a host whose identity is the certificate's key.
	n, err := node.New(node.Identity{Network: net, Key: key, Certificate: cert}, h, node.LocalConfig())
	if err != nil {
		return nil, errors.Join(err, h.Close())
	}
	if err := n.Start(); err != nil {
		return nil, errors.Join(err, n.Close(), h.Close())
	}
	if err := n.JoinChannel(channel); err != nil {
		return nil, errors.Join(err, n.Close(), h.Close())
	}
	return &app{host: h, node: n}, nil
}

// newHost is the application's libp2p host: TCP on loopback with Noise and
// yamux, and a resource manager whose limits cover libp2p's own services,
// the application's echo service, and fabgossip's transport service (every
// fabgossip stream is charged to transport.ServiceName).
func newHost(key crypto.PrivKey) (host.Host, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	limits.AddServiceLimit(echoService,
		rcmgr.BaseLimit{StreamsInbound: 64, StreamsOutbound: 64, Streams: 128, Memory: 4 << 20}, rcmgr.BaseLimitIncrease{})
	limits.AddServiceLimit(transport.ServiceName,
		rcmgr.BaseLimit{StreamsInbound: 512, StreamsOutbound: 512, Streams: 1024, Memory: 256 << 20}, rcmgr.BaseLimitIncrease{})
	limits.AddServicePeerLimit(transport.ServiceName,
		rcmgr.BaseLimit{StreamsInbound: 24, StreamsOutbound: 24, Streams: 48, Memory: 96 << 20}, rcmgr.BaseLimitIncrease{})
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()), rcmgr.WithMetricsDisabled())
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		return nil, errors.Join(err, rm.Close())
	}
	return h, nil
}

// handleEcho answers one line with the same line. Like fabgossip's own
// handlers it charges the stream to its service, bounds time and size, and
// ends the stream with Close or Reset.
func handleEcho(s network.Stream) {
	if err := s.Scope().SetService(echoService); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(s, 1024)).ReadString('\n')
	if err != nil {
		_ = s.Reset()
		return
	}
	if _, err := io.WriteString(s, line); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.Close()
}

// echo sends msg to p over the echo protocol and returns the answer.
func echo(ctx context.Context, h host.Host, p peer.ID, msg string) (string, error) {
	s, err := h.NewStream(ctx, p, echoProtocol)
	if err != nil {
		return "", fmt.Errorf("echo: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	if _, err := io.WriteString(s, msg+"\n"); err != nil {
		_ = s.Reset()
		return "", fmt.Errorf("echo: %w", err)
	}
	_ = s.CloseWrite()
	line, err := bufio.NewReader(io.LimitReader(s, 1024)).ReadString('\n')
	if err != nil {
		_ = s.Reset()
		return "", fmt.Errorf("echo: %w", err)
	}
	_ = s.Close()
	return strings.TrimSuffix(line, "\n"), nil
}
