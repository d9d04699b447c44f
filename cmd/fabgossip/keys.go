package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/node/identity"
)

func runKeygen(_ context.Context, e *env, args []string) error {
	const name = "keygen"
	fs := newFlagSet(name)
	out := fs.String("out", "", "key file to write (mode 0600; never overwritten)")
	h := help{
		usage:       "fabgossip keygen --out FILE",
		description: "Generates a peer's libp2p Ed25519 key into FILE and prints its peer ID, which\nthe org CA then certifies with \"fabgossip ca issue\".",
		example:     "fabgossip keygen --out peer.key\n# 12D3KooW...",
	}
	key, err := keyFileCommand(e, name, fs, h, args, out)
	if err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, id)
	return nil
}

func runCAInit(_ context.Context, e *env, args []string) error {
	const name = "ca init"
	fs := newFlagSet(name)
	out := fs.String("out", "", "CA key file to write (mode 0600; keep it offline)")
	h := help{
		usage: "fabgossip ca init --out FILE",
		description: "Generates an org CA key into FILE and prints its public key, the value of the\n" +
			"org's \"ca\" field in the network config.",
		example: "fabgossip ca init --out org1-ca.key\n# CAESIH... (put it in network.yaml: orgs: [{name: org1, ca: CAESIH...}])",
	}
	key, err := keyFileCommand(e, name, fs, h, args, out)
	if err != nil {
		return err
	}
	pub, err := crypto.MarshalPublicKey(key.GetPublic())
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, base64.StdEncoding.EncodeToString(pub))
	return nil
}

func runCAIssue(_ context.Context, e *env, args []string) error {
	const name = "ca issue"
	fs := newFlagSet(name)
	caPath := fs.String("ca", "", "the org CA key file")
	netPath := fs.String("network", "", "the network config file (names the network and the org's CA)")
	org := fs.String("org", "", "the org the peer belongs to")
	peerID := fs.String("peer", "", "the peer ID to certify (from fabgossip keygen)")
	out := fs.String("out", "", "certificate file to write")
	validity := fs.Duration("validity", 365*24*time.Hour, "how long the certificate is valid from now")
	h := help{
		usage: "fabgossip ca issue --ca FILE --network FILE --org ORG --peer ID --out FILE",
		description: "Issues a membership certificate binding peer ID to ORG of the network, signed\n" +
			"by the org's CA key. The CA key must be the one the network config lists for ORG.",
		example: "fabgossip ca issue --ca org1-ca.key --network network.yaml --org org1 \\\n    --peer 12D3KooW... --out peer.cert",
	}
	if err := parseFlags(e, name, fs, h, args, false); err != nil {
		return err
	}
	for _, f := range []struct{ flag, value string }{
		{"--ca", *caPath}, {"--network", *netPath}, {"--org", *org}, {"--peer", *peerID}, {"--out", *out},
	} {
		if f.value == "" {
			return usagef(name, "%s is required", f.flag)
		}
	}
	if *validity <= 0 {
		return usagef(name, "--validity %v: want a positive duration", *validity)
	}
	id, err := peer.Decode(*peerID)
	if err != nil {
		return usagef(name, "--peer %q is not a peer ID: %v", *peerID, err)
	}
	net, err := identity.LoadNetwork(*netPath)
	if err != nil {
		return err
	}
	o, ok := net.Org(*org)
	if !ok {
		return fmt.Errorf("unknown org %q: network file %s lists %s", *org, *netPath, orgNames(net))
	}
	caKey, err := identity.LoadKey(*caPath)
	if err != nil {
		return err
	}
	if !caKey.GetPublic().Equals(o.CA) {
		return fmt.Errorf("CA key file %s is not the CA of org %q in network file %s", *caPath, *org, *netPath)
	}
	now := time.Now()
	cert, err := identity.IssueCertificate(caKey, identity.CertificateFields{
		Network: net.Name(), Org: *org, PeerID: id,
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(*validity), Serial: uint64(now.UnixNano()),
	})
	if err != nil {
		return err
	}
	if err := identity.WriteCertificate(*out, cert, identity.CreateOnly); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "certified %s as a peer of %s in network %s until %s\n", id, *org, net.Name(), now.Add(*validity).UTC().Format(time.RFC3339))
	return nil
}

func orgNames(n *identity.Network) string {
	var s string
	for i, o := range n.Orgs() {
		if i > 0 {
			s += ", "
		}
		s += o.Name
	}
	return s
}

// keyFileCommand is the shared body of keygen and ca init: parse the flags,
// require --out, and write a new key there.
func keyFileCommand(e *env, name string, fs *flag.FlagSet, h help, args []string, out *string) (crypto.PrivKey, error) {
	if err := parseFlags(e, name, fs, h, args, false); err != nil {
		return nil, err
	}
	if *out == "" {
		return nil, usagef(name, "--out is required")
	}
	return newKeyFile(*out)
}

// newKeyFile generates an Ed25519 key and writes it to path (mode 0600),
// refusing to overwrite an existing file.
func newKeyFile(path string) (crypto.PrivKey, error) {
	key, err := identity.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	if err := identity.WriteKey(path, key, identity.CreateOnly); err != nil {
		return nil, err
	}
	return key, nil
}
