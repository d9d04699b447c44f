package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/node/admin"
	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/testnet"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// The test network: org1 has peers 0 (external, publisher of ch0) and 1;
// org2 has peer 2 (external). ch0 is {org1, org2}; ch1 is {org1} only, so
// peer 2 must never see a block of ch1.
var topo = testnet.Topology{
	Network: "admintest",
	Orgs: []testnet.OrgSpec{
		{Name: "org1", Peers: 2, External: 1},
		{Name: "org2", Peers: 1, External: 1},
	},
	Channels: []identity.Channel{
		{Name: "ch0", Orgs: []string{"org1", "org2"}, Publishers: []string{"org1"}},
		{Name: "ch1", Orgs: []string{"org1"}},
	},
}

// fixture is a running in-process network with an admin API per peer.
type fixture struct {
	cluster *testnet.Cluster
	recs    []*admin.Recorder
	regs    []*prometheus.Registry
	servers []*httptest.Server
}

const token = "s3cret-token"

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{}
	channels := []string{"ch0", "ch1"}
	var setupErr error
	c, err := testnet.NewCluster(topo, testnet.Options{
		Seed: 7,
		NodeOptions: func(p *testnet.Peer) []node.Option {
			reg := prometheus.NewRegistry()
			rec, err := admin.NewRecorder(channels, reg)
			if err != nil {
				setupErr = err
				return nil
			}
			f.recs = append(f.recs, rec)
			f.regs = append(f.regs, reg)
			return []node.Option{
				node.WithTracer(rec.NodeTracer()),
				node.WithTransportTracer(rec.TransportTracer()),
				node.WithRegisterer(reg),
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	f.cluster = c
	t.Cleanup(func() {
		for _, s := range f.servers {
			s.Close()
		}
		if err := c.Close(); err != nil {
			t.Errorf("close cluster: %v", err)
		}
	})
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Peers {
		for _, ch := range c.Network.ChannelsOfOrg(p.Org) {
			if err := p.JoinChannel(ch); err != nil {
				t.Fatal(err)
			}
		}
		api, err := admin.New(p.Node, c.Network, f.recs[p.Index],
			admin.WithToken(token), admin.WithGatherer(f.regs[p.Index]),
			admin.WithAddrs(p.Host.Addrs), admin.WithMaxBlockBytes(1024))
		if err != nil {
			t.Fatal(err)
		}
		f.servers = append(f.servers, httptest.NewServer(api))
	}
	// Wait until org1's peers see each other in ch0 and ch1, and the
	// external peers see each other in ch0.
	poll(t, "channel views to converge", func() bool {
		return len(c.Peers[0].ChannelPeers("ch0")) == 2 && len(c.Peers[1].ChannelPeers("ch1")) == 1 &&
			len(c.Peers[2].ChannelPeers("ch0")) == 1
	})
	return f
}

// poll checks cond until it holds or a generous deadline passes: network
// convergence has no single event to wait on.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func (f *fixture) client(t *testing.T, i int) *admin.Client {
	t.Helper()
	c, err := admin.NewClient(f.servers[i].URL, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func do(t *testing.T, method, url, auth string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

func TestPublishAndReadBlocks(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pub := f.client(t, 0)

	want := [][]byte{[]byte("block zero"), []byte("block one"), {}}
	for i, data := range want {
		p, err := pub.Publish(ctx, "ch0", data)
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if p.Number != uint64(i) || p.Size != len(data) || p.PublishedAt == 0 || len(p.Hash) != 64 {
			t.Fatalf("publish %d: got %+v", i, p)
		}
	}

	// Every member of ch0 delivers the blocks; peer 2 is in another org.
	for _, i := range []int{0, 1, 2} {
		c := f.client(t, i)
		poll(t, "delivery of ch0 blocks", func() bool {
			l, err := c.Blocks(ctx, "ch0", 0, 100, true)
			return err == nil && len(l.Blocks) == len(want)
		})
		l, err := c.Blocks(ctx, "ch0", 1, 100, true)
		if err != nil {
			t.Fatal(err)
		}
		if l.Height != 3 || len(l.Blocks) != 2 {
			t.Fatalf("peer %d: from=1: height %d, %d blocks; want 3 and 2", i, l.Height, len(l.Blocks))
		}
		if b := l.Blocks[0]; b.Number != 1 || !bytes.Equal(b.Data, want[1]) || b.DeliveredAt == 0 ||
			b.Publisher != f.cluster.Peers[0].Host.ID().String() {
			t.Errorf("peer %d: block 1 = %+v", i, b)
		}
		meta, err := c.Blocks(ctx, "ch0", 0, 2, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(meta.Blocks) != 2 || meta.Blocks[1].Number != 1 || meta.Blocks[1].Data != nil || meta.Blocks[1].DeliveredAt == 0 {
			t.Errorf("peer %d: data=false, limit=2: %+v", i, meta.Blocks)
		}
	}
}

func TestStatus(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.client(t, 0).Publish(ctx, "ch1", []byte("org1 only")); err != nil {
		t.Fatal(err)
	}
	poll(t, "peer 1 to deliver the ch1 block", func() bool {
		h, err := f.cluster.Peers[1].Height("ch1")
		return err == nil && h == 1
	})

	st, err := f.client(t, 2).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.PeerID != f.cluster.Peers[2].Host.ID().String() || st.Org != "org2" || !st.External || st.Network != "admintest" {
		t.Errorf("identity: %+v", st)
	}
	if len(st.Addrs) == 0 {
		t.Errorf("no addresses")
	}
	byName := map[string]admin.ChannelStatus{}
	for _, c := range st.Channels {
		byName[c.Name] = c
	}
	if c := byName["ch0"]; !c.Member || !c.Joined || c.Peers != 1 {
		t.Errorf("org2's ch0: %+v", c)
	}
	if c := byName["ch1"]; c.Member || c.Joined || c.Height != 0 || c.BlocksReceived != 0 {
		t.Errorf("org2's ch1 (not a member): %+v", c)
	}
	if len(st.Peers) == 0 {
		t.Errorf("no known peers")
	}
	for _, p := range st.Peers {
		if p.Org == "org1" && !p.External {
			t.Errorf("org2 knows org1's internal peer %s", p.ID)
		}
	}

	st1, err := f.client(t, 1).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st1.Channels {
		if c.Name == "ch1" && (c.Height != 1 || c.BlocksDelivered != 1 || c.BlocksReceived == 0) {
			t.Errorf("peer 1's ch1: %+v", c)
		}
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	if _, err := f.client(t, 0).Publish(context.Background(), "ch0", []byte("x")); err != nil {
		t.Fatal(err)
	}
	poll(t, "peer 2 to deliver", func() bool {
		h, err := f.cluster.Peers[2].Height("ch0")
		return err == nil && h == 1
	})
	// Counters move when the work is done, not when Height says so, and
	// peer 2's first push frame may trail its delivery: wait for all of them.
	wants := []string{
		`fabgossip_channel_blocks_delivered_total{channel="ch0"} 1`,
		`fabgossip_blocks_delivered_total 1`,
		`fabgossip_transport_bytes_sent_total{protocol="/fabgossip/push/1.0.0"}`,
		`fabgossip_messages_received_total{kind="block"}`,
	}
	var missing []string
	var fetchErr error
	deadline := time.Now().Add(20 * time.Second)
	for {
		missing = missing[:0]
		text, err := f.client(t, 2).Metrics(context.Background())
		fetchErr = err
		for _, want := range wants {
			if err != nil || !strings.Contains(string(text), want) {
				missing = append(missing, want)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if fetchErr != nil {
		t.Fatal(fetchErr)
	}
	for _, want := range missing {
		t.Errorf("metrics lack %s", want)
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	base0, base2 := f.servers[0].URL, f.servers[2].URL
	bearer := "Bearer " + token
	tests := []struct {
		name   string
		method string
		url    string
		auth   string
		body   []byte
		code   int
		msg    string
	}{
		{"no token", "GET", base0 + "/v1/status", "", nil, 401, "bearer token"},
		{"wrong token", "GET", base0 + "/v1/status", "Bearer nope", nil, 401, "bearer token"},
		{"token of another length", "GET", base0 + "/metrics", "Bearer " + token + "x", nil, 401, "bearer token"},
		{"healthz needs no token", "GET", base0 + "/healthz", "", nil, 200, ""},
		{"unknown path", "GET", base0 + "/v2/nothing", bearer, nil, 404, "no such endpoint"},
		{"wrong method", "DELETE", base0 + "/v1/status", bearer, nil, 405, "not allowed"},
		{"unknown channel", "GET", base0 + "/v1/channels/nope/blocks", bearer, nil, 404, "unknown channel"},
		{"bad from", "GET", base0 + "/v1/channels/ch0/blocks?from=-1", bearer, nil, 400, "from"},
		{"bad limit", "GET", base0 + "/v1/channels/ch0/blocks?limit=0", bearer, nil, 400, "limit"},
		{"bad data flag", "GET", base0 + "/v1/channels/ch0/blocks?data=maybe", bearer, nil, 400, "data"},
		{"too large", "POST", base0 + "/v1/channels/ch0/blocks", bearer, make([]byte, 1025), 413, "larger than 1024"},
		{"not a member", "GET", base2 + "/v1/channels/ch1/blocks", bearer, nil, 403, "not a member"},
		{"may not publish", "POST", base2 + "/v1/channels/ch0/blocks", bearer, []byte("x"), 403, "may not publish"},
		{"publish unknown channel", "POST", base0 + "/v1/channels/nope/blocks", bearer, []byte("x"), 404, "unknown channel"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, tc.method, tc.url, tc.auth, tc.body)
			if code != tc.code {
				t.Fatalf("status %d, want %d (body %s)", code, tc.code, body)
			}
			var e admin.ErrorBody
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("body is not JSON: %q", body)
			}
			if !strings.Contains(e.Error, tc.msg) {
				t.Errorf("error %q does not mention %q", e.Error, tc.msg)
			}
		})
	}

	// The client surfaces the API's errors.
	_, err := f.client(t, 2).Publish(context.Background(), "ch0", []byte("x"))
	var apiErr *admin.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 403 {
		t.Errorf("client publish by a non-publisher: %v", err)
	}
}

func TestRecorderDeliveryLog(t *testing.T) {
	now := time.Unix(100, 0)
	rec, err := admin.NewRecorder([]string{"ch"}, nil, admin.WithDeliveryLog(3),
		admin.WithClock(func() time.Time { now = now.Add(time.Second); return now }))
	if err != nil {
		t.Fatal(err)
	}
	tr := rec.NodeTracer()
	for n := range uint64(5) {
		tr.BlockDelivered(node.Block{Channel: "ch", Number: n, Data: []byte("abc"), Hash: []byte{byte(n)}})
	}
	tr.BlockDelivered(node.Block{Channel: "unknown", Number: 0})

	got := rec.Deliveries("ch", 0, 10)
	if len(got) != 3 || got[0].Number != 2 || got[2].Number != 4 || got[2].Size != 3 {
		t.Fatalf("log of 3 after 5 deliveries: %+v", got)
	}
	if at, ok := rec.DeliveredAt("ch", 4); !ok || at != time.Unix(105, 0) {
		t.Errorf("DeliveredAt(4) = %v, %v", at, ok)
	}
	if _, ok := rec.DeliveredAt("ch", 1); ok {
		t.Errorf("block 1 should have left the log")
	}
	if got := rec.Deliveries("ch", 4, 10); len(got) != 1 {
		t.Errorf("from 4: %+v", got)
	}
	if c := rec.Counts("ch"); c.BlocksDelivered != 5 {
		t.Errorf("counts: %+v", c)
	}
	if _, err := admin.NewRecorder(nil, nil, admin.WithDeliveryLog(0)); err == nil {
		t.Errorf("a delivery log of 0 entries was accepted")
	}
}

func TestServerListenAndClose(t *testing.T) {
	api, err := admin.New(stubNode{}, mustNetwork(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := admin.Listen("127.0.0.1:0", api, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := admin.NewClient(srv.URL(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Healthz(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Listen(srv.Addr().String(), api, nil); err == nil || !strings.Contains(err.Error(), "listen on") {
		t.Errorf("second Listen on a taken port: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := c.Healthz(context.Background()); err == nil {
		t.Errorf("healthz answered after Close")
	}
}

// stubNode is a node without a network, for the server's plumbing.
type stubNode struct{}

func (stubNode) Self() node.Peer                                  { return node.Peer{Org: "org1"} }
func (stubNode) Peers() []node.Peer                               { return nil }
func (stubNode) ChannelPeers(string) []node.Peer                  { return nil }
func (stubNode) Height(string) (uint64, error)                    { return 0, nil }
func (stubNode) Blocks(string, uint64, int) ([]node.Block, error) { return nil, nil }
func (stubNode) Publish(context.Context, string, []byte) (node.Block, error) {
	return node.Block{}, node.ErrClosed
}

func mustNetwork(t *testing.T) *identity.Network {
	t.Helper()
	n, _, err := identity.GenerateNetwork("stub", []string{"org1"}, []identity.Channel{{Name: "ch", Orgs: []string{"org1"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRecorderCountsReceivedWithoutCopying: counting a received block
// reads its channel in place; the block's data is not decoded (copied),
// however large, and the counts are the envelope's.
func TestRecorderCountsReceivedWithoutCopying(t *testing.T) {
	rec, err := admin.NewRecorder([]string{"ch"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := proto.Marshal(&wire.Message{Content: &wire.Message_Block{Block: &wire.Block{
		Channel: "ch", Number: 3, Data: make([]byte, 1<<20)}}})
	if err != nil {
		t.Fatal(err)
	}
	env := &wire.Envelope{Payload: payload, Signature: make([]byte, 64)}
	tr := rec.NodeTracer()
	tr.Received("p", env) // warm the label cache
	const n = 50
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		tr.Received("p", env)
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 4<<10 {
		t.Errorf("%d bytes allocated per 1 MiB block received: its data was copied", per)
	}
	if c := rec.Counts("ch"); c.BlocksReceived != n+1 || c.BlockBytesReceived != uint64(n+1)*uint64(proto.Size(env)) {
		t.Errorf("counts %+v", c)
	}
}

// TestRecorderCountsChunks: chunks of chunked blocks count as block bytes
// received (not as blocks), so bytes per delivered byte stays true for
// blocks that travel as chunks.
func TestRecorderCountsChunks(t *testing.T) {
	rec, err := admin.NewRecorder([]string{"ch"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ct, ok := rec.NodeTracer().(node.ChunkTracer)
	if !ok {
		t.Fatal("the recorder's node tracer does not see chunks")
	}
	ct.ChunkReceived("p", "ch", 64<<10)
	ct.ChunkReceived("p", "ch", 1000)
	if c := rec.Counts("ch"); c.BlocksReceived != 0 || c.BlockBytesReceived != 64<<10+1000 {
		t.Errorf("counts %+v", c)
	}
}
