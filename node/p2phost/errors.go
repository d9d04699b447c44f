package p2phost

import "errors"

// ErrInvalidConfig is wrapped by every error of Config.Validate (and so of
// New when the configuration is invalid).
var ErrInvalidConfig = errors.New("p2phost: invalid config")

// ErrNoKey is returned by New when the identity key is nil.
var ErrNoKey = errors.New("p2phost: no identity key")
