// Package wire holds fabgossip's protobuf schema (wire.proto) and the Go code
// generated from it. Regenerate with `go generate ./transport/wire`; the
// generator and its versions are pinned in go.mod, so the output is
// byte-identical on every machine.
package wire

//go:generate go run github.com/fabgossip/fabgossip/internal/protogen wire.proto
