package identity

import (
	"errors"
	"fmt"
	"strings"
)

// Reasons VerifyCertificate rejects a certificate. Each is returned wrapped
// with detail, so callers test with errors.Is and log the whole error.
var (
	// ErrMalformedCert: the certificate does not decode, a field is missing or
	// out of range, or the signature has the wrong size.
	ErrMalformedCert = errors.New("malformed certificate")
	// ErrWrongNetwork: the certificate was issued for another network.
	ErrWrongNetwork = errors.New("certificate is for another network")
	// ErrUnknownOrg: the certificate names an org that this network's config
	// does not list, so there is no CA to check it against.
	ErrUnknownOrg = errors.New("certificate names an unknown org")
	// ErrBadCertSignature: the signature is not the named org's CA signature
	// over the body (tampered, or signed by another CA).
	ErrBadCertSignature = errors.New("certificate signature does not verify against the org's CA")
	// ErrWrongPeer: a valid certificate, but for another peer ID than the one
	// presenting it.
	ErrWrongPeer = errors.New("certificate is for another peer")
	// ErrNotYetValid: now is before the certificate's NotBefore.
	ErrNotYetValid = errors.New("certificate is not yet valid")
	// ErrExpired: now is at or after the certificate's NotAfter.
	ErrExpired = errors.New("certificate has expired")
)

// ConfigError is one mistake in a network config: where it is and what is
// wrong with which value. ParseNetwork, LoadNetwork, NewNetwork and
// NetworkSpec.Validate return every mistake they find, joined with
// errors.Join; use errors.As to get at the first one.
type ConfigError struct {
	// File is the config file's name; empty when the network did not come
	// from a file.
	File string
	// Line is the 1-based line in File; 0 when unknown.
	Line int
	// Field is the path of the offending field, as written in the YAML:
	// "network", "orgs[2].ca", "channels[1].orgs[0]". Empty when the mistake
	// is about the file as a whole.
	Field string
	// Msg says what is wrong and quotes the offending value.
	Msg string

	unknownField bool // a field the format does not have
}

// Error formats as "file:line: field: msg", leaving out what is unknown,
// the way compilers do, so editors can jump to the line.
func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// joinConfigErrors turns a list of mistakes into one error, nil if none.
func joinConfigErrors(errs []*ConfigError) error {
	if len(errs) == 0 {
		return nil
	}
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}
