// Package admin is the HTTP admin API of a running fabgossip peer, and its
// client.
//
//	GET  /healthz                          liveness: {"status":"ok"}
//	GET  /metrics                          Prometheus: fabgossip_* and libp2p's own
//	GET  /v1/status                        peer ID, org, addresses, channels, known peers
//	POST /v1/channels/{ch}/blocks          publish the request body as the next block
//	GET  /v1/channels/{ch}/blocks?from=N   delivered blocks from number N on
//
// Every error is a 4xx or 5xx with a JSON body {"error": "..."}. Request
// bodies are capped (MaxBytesReader), and when a token is configured every
// endpoint but /healthz requires "Authorization: Bearer <token>", compared in
// constant time.
//
// A Recorder observes the node (it provides a node.Tracer and a
// transport.Tracer): it keeps the time each block was delivered, so that
// GET .../blocks can say when (delivered_at, Unix nanoseconds), and counts per
// channel the block envelopes that reach this peer, whether or not it accepts
// them. On a peer whose org is not a member of a channel that count must stay
// zero: it is how the testnet proves that no block leaked.
//
// API is the http.Handler; Server runs it on a listener with timeouts; Client
// talks to it (the CLI's publish and status, and the testnet).
package admin
