package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/node/identity"
)

// Limits of GET /v1/channels/{ch}/blocks.
const (
	// DefaultBlocksLimit is the number of blocks returned when the request
	// has no limit.
	DefaultBlocksLimit = 100
	// MaxBlocksLimit caps limit; with data, MaxBlocksDataBytes caps the
	// response too, and a node without a store serves only its window
	// (MaxBlockCountToStore).
	MaxBlocksLimit = 10000
	// MaxBlocksDataBytes caps the block data of one response (at least one
	// block is always returned).
	MaxBlocksDataBytes = 8 << 20
)

// Node is what the admin API needs of a *node.Node.
type Node interface {
	Self() node.Peer
	Peers() []node.Peer
	ChannelPeers(ch string) []node.Peer
	Height(ch string) (uint64, error)
	Publish(ctx context.Context, ch string, data []byte) (node.Block, error)
	Blocks(ch string, from uint64, limit int) ([]node.Block, error)
}

// API is the admin HTTP handler of one peer. Build it with New.
type API struct {
	node          Node
	net           *identity.Network
	rec           *Recorder
	gatherer      prometheus.Gatherer
	addrs         func() []ma.Multiaddr
	tokenHash     *[sha256.Size]byte
	maxBlockBytes int64
	publishTime   time.Duration
	now           func() time.Time
	log           *slog.Logger
	mux           *http.ServeMux
}

// Option configures New.
type Option func(*API)

// WithToken requires "Authorization: Bearer token" on every endpoint but
// /healthz. An empty token leaves the API open.
func WithToken(token string) Option {
	return func(a *API) {
		if token == "" {
			a.tokenHash = nil
			return
		}
		h := sha256.Sum256([]byte(token))
		a.tokenHash = &h
	}
}

// WithGatherer serves g on /metrics (default: /metrics answers 404).
func WithGatherer(g prometheus.Gatherer) Option { return func(a *API) { a.gatherer = g } }

// WithAddrs reports the peer's listen addresses in /v1/status (for example
// host.Addrs).
func WithAddrs(f func() []ma.Multiaddr) Option { return func(a *API) { a.addrs = f } }

// WithMaxBlockBytes caps the body of POST /v1/channels/{ch}/blocks (default
// node.DefaultConfig().MaxBlockBytes); set it to the node's MaxBlockBytes.
func WithMaxBlockBytes(n int) Option { return func(a *API) { a.maxBlockBytes = int64(n) } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(a *API) { a.log = l } }

// WithAPIClock sets the clock of published_at (default time.Now).
func WithAPIClock(now func() time.Time) Option { return func(a *API) { a.now = now } }

// New returns the admin API of n, a peer of net whose node reports to rec
// (nil: no delivery times and no per-channel counts).
func New(n Node, net *identity.Network, rec *Recorder, opts ...Option) (*API, error) {
	if n == nil || net == nil {
		return nil, errors.New("admin: New needs a node and its network")
	}
	a := &API{
		node:          n,
		net:           net,
		rec:           rec,
		maxBlockBytes: int64(node.DefaultConfig().MaxBlockBytes),
		publishTime:   10 * time.Second,
		now:           time.Now,
		log:           slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		opt(a)
	}
	if a.maxBlockBytes <= 0 {
		return nil, fmt.Errorf("admin: max block bytes %d; want a positive size", a.maxBlockBytes)
	}
	a.mux = http.NewServeMux()
	a.mux.HandleFunc("/healthz", a.healthz)
	a.mux.Handle("/metrics", a.authorized(a.metricsHandler()))
	a.mux.Handle("/v1/status", a.authorized(http.HandlerFunc(a.status)))
	a.mux.Handle("/v1/channels/{ch}/blocks", a.authorized(http.HandlerFunc(a.blocks)))
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	return a, nil
}

// ServeHTTP implements http.Handler. A panic in a handler is answered with
// 500 and logged: nothing a client sends brings the peer down.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			a.log.Error("admin handler panicked", "path", r.URL.Path, "panic", v)
			writeError(w, http.StatusInternalServerError, "internal error")
		}
	}()
	a.mux.ServeHTTP(w, r)
}

func (a *API) authorized(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.tokenHash != nil {
			token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			// Comparing hashes keeps the comparison constant-time in the
			// token's length too.
			got := sha256.Sum256([]byte(token))
			if !ok || subtle.ConstantTimeCompare(got[:], a.tokenHash[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="fabgossip"`)
				writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (a *API) metricsHandler() http.Handler {
	if a.gatherer == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusNotFound, "metrics are not enabled on this peer")
		})
	}
	return promhttp.HandlerFor(a.gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) {
		return true
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed; use %s", r.Method, strings.Join(methods, " or ")))
	return false
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Status is the body of GET /v1/status.
type Status struct {
	PeerID   string          `json:"peer_id"`
	Org      string          `json:"org"`
	Network  string          `json:"network"`
	External bool            `json:"external"`
	Addrs    []string        `json:"addrs"`
	Channels []ChannelStatus `json:"channels"`
	Peers    []PeerStatus    `json:"peers"`
}

// ChannelStatus is one channel of the network as this peer sees it. Every
// channel of the network config is listed, so that a peer of a non-member
// org shows that it received none of the channel's blocks.
type ChannelStatus struct {
	Name string `json:"name"`
	// Member: this peer's org is a member of the channel.
	Member bool `json:"member"`
	Joined bool `json:"joined"`
	// Height is the next block number this peer expects (0 for a
	// non-member).
	Height uint64 `json:"height"`
	// Peers is the number of live peers this peer knows to be eligible.
	Peers int `json:"peers"`
	// The Recorder's counts (see ChannelCounts).
	BlocksReceived     uint64 `json:"blocks_received"`
	BlockBytesReceived uint64 `json:"block_bytes_received"`
	BlocksAccepted     uint64 `json:"blocks_accepted"`
	BlocksDelivered    uint64 `json:"blocks_delivered"`
}

// PeerStatus is a known peer.
type PeerStatus struct {
	ID       string   `json:"id"`
	Org      string   `json:"org"`
	External bool     `json:"external"`
	Alive    bool     `json:"alive"`
	Channels []string `json:"channels"`
}

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	self := a.node.Self()
	st := Status{
		PeerID:   self.ID.String(),
		Org:      self.Org,
		Network:  a.net.Name(),
		External: self.External,
		Addrs:    []string{},
		Channels: []ChannelStatus{},
		Peers:    []PeerStatus{},
	}
	if a.addrs != nil {
		for _, addr := range a.addrs() {
			st.Addrs = append(st.Addrs, addr.String())
		}
	}
	for _, c := range a.net.Channels() {
		cs := ChannelStatus{
			Name:   c.Name,
			Member: a.net.OrgInChannel(self.Org, c.Name),
			Joined: slices.Contains(self.Channels, c.Name),
		}
		if cs.Member {
			cs.Height, _ = a.node.Height(c.Name)
			cs.Peers = len(a.node.ChannelPeers(c.Name))
		}
		if a.rec != nil {
			n := a.rec.Counts(c.Name)
			cs.BlocksReceived, cs.BlockBytesReceived = n.BlocksReceived, n.BlockBytesReceived
			cs.BlocksAccepted, cs.BlocksDelivered = n.BlocksAccepted, n.BlocksDelivered
		}
		st.Channels = append(st.Channels, cs)
	}
	for _, p := range a.node.Peers() {
		ps := PeerStatus{ID: p.ID.String(), Org: p.Org, External: p.External, Alive: p.Alive, Channels: p.Channels}
		if ps.Channels == nil {
			ps.Channels = []string{}
		}
		st.Peers = append(st.Peers, ps)
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *API) blocks(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodGet, http.MethodHead, http.MethodPost) {
		return
	}
	ch := r.PathValue("ch")
	if _, ok := a.net.Channel(ch); !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown channel %q", ch))
		return
	}
	if r.Method == http.MethodPost {
		a.publish(w, r, ch)
		return
	}
	a.listBlocks(w, r, ch)
}

// Published is the body of a successful POST /v1/channels/{ch}/blocks.
type Published struct {
	Channel  string `json:"channel"`
	Number   uint64 `json:"number"`
	Hash     string `json:"hash"`
	DataHash string `json:"data_hash"`
	Size     int    `json:"size"`
	// PublishedAt is when the request reached the node (Unix nanoseconds),
	// the start of the block's dissemination.
	PublishedAt int64 `json:"published_at"`
}

func (a *API) publish(w http.ResponseWriter, r *http.Request, ch string) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.maxBlockBytes))
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("block data larger than %d bytes", a.maxBlockBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.publishTime)
	defer cancel()
	at := a.now()
	b, err := a.node.Publish(ctx, ch, data)
	if err != nil {
		writeNodeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, Published{
		Channel:     b.Channel,
		Number:      b.Number,
		Hash:        hex.EncodeToString(b.Hash),
		DataHash:    hex.EncodeToString(b.DataHash),
		Size:        len(b.Data),
		PublishedAt: at.UnixNano(),
	})
}

// BlockList is the body of GET /v1/channels/{ch}/blocks.
type BlockList struct {
	Channel string `json:"channel"`
	// Height is the next block number this peer expects.
	Height uint64      `json:"height"`
	Blocks []BlockInfo `json:"blocks"`
}

// BlockInfo is one delivered block.
type BlockInfo struct {
	Number       uint64 `json:"number"`
	Hash         string `json:"hash"`
	PreviousHash string `json:"previous_hash,omitempty"`
	DataHash     string `json:"data_hash,omitempty"`
	Publisher    string `json:"publisher,omitempty"`
	Size         int    `json:"size"`
	// DeliveredAt is when this peer delivered the block (Unix nanoseconds);
	// 0 when no longer remembered.
	DeliveredAt int64 `json:"delivered_at"`
	// Data is the block's data (base64 in JSON); absent with data=false.
	Data []byte `json:"data,omitempty"`
}

// listBlocks serves GET: with data (the default) from the node's block
// window; with data=false from the Recorder's longer delivery log.
func (a *API) listBlocks(w http.ResponseWriter, r *http.Request, ch string) {
	q := r.URL.Query()
	from, err := uintParam(q.Get("from"), 0)
	if err != nil {
		writeError(w, http.StatusBadRequest, "from: "+err.Error())
		return
	}
	limit, err := uintParam(q.Get("limit"), DefaultBlocksLimit)
	if err != nil || limit == 0 || limit > MaxBlocksLimit {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("limit: want a number from 1 to %d, got %q", MaxBlocksLimit, q.Get("limit")))
		return
	}
	withData := true
	if s := q.Get("data"); s != "" {
		withData, err = strconv.ParseBool(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("data: want true or false, got %q", s))
			return
		}
	}
	height, err := a.node.Height(ch)
	if err != nil {
		writeNodeError(w, err)
		return
	}
	out := BlockList{Channel: ch, Height: height, Blocks: []BlockInfo{}}
	if !withData {
		if a.rec != nil {
			for _, d := range a.rec.Deliveries(ch, from, int(limit)) {
				out.Blocks = append(out.Blocks, BlockInfo{
					Number: d.Number, Hash: hex.EncodeToString(d.Hash), Size: d.Size, DeliveredAt: d.At.UnixNano(),
				})
			}
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	blocks, err := a.node.Blocks(ch, from, int(limit))
	if err != nil {
		writeNodeError(w, err)
		return
	}
	total := 0
	for _, b := range blocks {
		if total > 0 && total+len(b.Data) > MaxBlocksDataBytes {
			break
		}
		total += len(b.Data)
		info := BlockInfo{
			Number:       b.Number,
			Hash:         hex.EncodeToString(b.Hash),
			PreviousHash: hex.EncodeToString(b.PreviousHash),
			DataHash:     hex.EncodeToString(b.DataHash),
			Publisher:    b.Publisher.String(),
			Size:         len(b.Data),
			Data:         b.Data,
		}
		if a.rec != nil {
			if at, ok := a.rec.DeliveredAt(ch, b.Number); ok {
				info.DeliveredAt = at.UnixNano()
			}
		}
		out.Blocks = append(out.Blocks, info)
	}
	writeJSON(w, http.StatusOK, out)
}

func uintParam(s string, def uint64) (uint64, error) {
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want a non-negative integer, got %q", s)
	}
	return v, nil
}

// writeNodeError maps the node's sentinel errors to HTTP statuses.
func writeNodeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, node.ErrUnknownChannel):
		code = http.StatusNotFound
	case errors.Is(err, node.ErrNotMember), errors.Is(err, node.ErrMayNotPublish):
		code = http.StatusForbidden
	case errors.Is(err, node.ErrNotJoined):
		code = http.StatusConflict
	case errors.Is(err, node.ErrBlockTooLarge):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, node.ErrClosed), errors.Is(err, node.ErrNotStarted):
		code = http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		code = http.StatusServiceUnavailable
	}
	writeError(w, code, err.Error())
}

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
