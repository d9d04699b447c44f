package discovery

import "errors"

// ErrInvalidConfig is wrapped by every error of Config.Validate (and so of
// New when the configuration is invalid).
var ErrInvalidConfig = errors.New("discovery: invalid config")

// ErrNoPeerID is wrapped by ParseAddrInfos for an address without a
// /p2p/<peer ID> component: a peer is dialled by ID, so that the secure
// channel proves we reached the peer we meant.
var ErrNoPeerID = errors.New("discovery: address has no /p2p/<peer ID>")

// ErrStarted is returned by Start on a Discovery that was already started.
var ErrStarted = errors.New("discovery: already started")

// ErrClosed is returned by Start on a closed Discovery.
var ErrClosed = errors.New("discovery: closed")
