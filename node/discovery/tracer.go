package discovery

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Source is where a candidate came from.
type Source string

// The sources of candidates.
const (
	SourceBootstrap Source = "bootstrap"
	SourceMDNS      Source = "mdns"
	SourceDHT       Source = "dht"
	SourceExternal  Source = "external" // AddCandidate
)

// Tracer is told what discovery does. Its methods are called synchronously
// from discovery's goroutines (several at once): they must be quick and
// safe for concurrent use. Embed NopTracer to implement only some.
type Tracer interface {
	// CandidateFound: src produced p (before any filtering: p may be
	// connected already, or rate-limited).
	CandidateFound(src Source, p peer.ID)
	// Dialed: a dial of p from src finished; err is nil on success.
	Dialed(src Source, p peer.ID, err error)
	// Advertised: an Advertise of the namespace on the DHT finished.
	Advertised(namespace string, ttl time.Duration, err error)
}

// NopTracer ignores every event; it is the default Tracer.
type NopTracer struct{}

// CandidateFound does nothing.
func (NopTracer) CandidateFound(Source, peer.ID) {}

// Dialed does nothing.
func (NopTracer) Dialed(Source, peer.ID, error) {}

// Advertised does nothing.
func (NopTracer) Advertised(string, time.Duration, error) {}
