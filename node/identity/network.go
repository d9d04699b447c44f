package identity

import (
	"fmt"
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/crypto/pb"
)

// MaxNameLen is the longest network, org or channel name, in bytes. Names
// travel in every certificate, so they are kept short.
const MaxNameLen = 128

// Org is an organisation of a network: a name and the public key of the CA
// that issues its peers' membership certificates.
type Org struct {
	Name string
	// CA is the org CA's Ed25519 public key.
	CA crypto.PubKey
}

// Channel is a named subset of a network's orgs that share a stream of
// blocks.
type Channel struct {
	Name string
	// Orgs are the member orgs, by name.
	Orgs []string
	// Publishers are the member orgs whose peers may publish blocks. Empty
	// means every member org may: a channel nobody may publish to would be
	// useless, so "empty" is never read as "nobody".
	Publishers []string
}

// NetworkSpec is the plain, editable description of a network: the shape of
// the config file with the CA keys decoded. NewNetwork turns a valid spec into
// a *Network.
type NetworkSpec struct {
	Name     string
	Orgs     []Org
	Channels []Channel
}

// Validate reports every mistake in the spec as a *ConfigError naming the
// field and the value, joined with errors.Join; nil if the spec is valid.
//
// A valid spec has: a network name; at least one org; unique org and channel
// names; every name 1 to MaxNameLen bytes of printable UTF-8 without spaces;
// every org an Ed25519 CA key that no other org shares (a shared CA could
// issue certificates for either org); every channel at least one member org,
// members and publishers naming known orgs once each, publishers a subset of
// the members.
func (s NetworkSpec) Validate() error {
	return joinConfigErrors(s.validate(nil))
}

// validate lists the spec's mistakes. caReported marks orgs whose CA field was
// already reported as undecodable, so a nil CA there is not reported twice.
func (s NetworkSpec) validate(caReported map[int]bool) []*ConfigError {
	var errs []*ConfigError
	fail := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}

	if s.Name == "" {
		fail("network", "missing network name")
	} else if msg := checkName(s.Name); msg != "" {
		fail("network", "invalid network name %q: %s", s.Name, msg)
	}

	if len(s.Orgs) == 0 {
		fail("orgs", "a network needs at least one org")
	}
	orgIndex := make(map[string]int, len(s.Orgs))
	caOwner := make(map[string]int, len(s.Orgs))
	for i, o := range s.Orgs {
		field := fmt.Sprintf("orgs[%d]", i)
		checkEntryName(fail, field, "org", "orgs", o.Name, i, orgIndex)
		switch {
		case o.CA == nil:
			if !caReported[i] {
				fail(field+".ca", "missing CA key of org %q", o.Name)
			}
		case o.CA.Type() != pb.KeyType_Ed25519:
			fail(field+".ca", "CA key of org %q is %s, want Ed25519", o.Name, o.CA.Type())
		default:
			raw, err := o.CA.Raw()
			if err != nil {
				fail(field+".ca", "CA key of org %q: %v", o.Name, err)
				break
			}
			if j, dup := caOwner[string(raw)]; dup {
				fail(field+".ca", "org %q has the same CA key as orgs[%d] (%q); each org needs its own CA", o.Name, j, s.Orgs[j].Name)
			} else {
				caOwner[string(raw)] = i
			}
		}
	}

	channelIndex := make(map[string]int, len(s.Channels))
	for i, c := range s.Channels {
		field := fmt.Sprintf("channels[%d]", i)
		checkEntryName(fail, field, "channel", "channels", c.Name, i, channelIndex)
		if len(c.Orgs) == 0 {
			fail(field+".orgs", "channel %q needs at least one member org", c.Name)
		}
		members := make(map[string]int, len(c.Orgs))
		for k, org := range c.Orgs {
			f := fmt.Sprintf("%s.orgs[%d]", field, k)
			if _, known := orgIndex[org]; !known {
				fail(f, "unknown org %q", org)
			}
			if j, dup := members[org]; dup {
				fail(f, "org %q listed twice (also %s.orgs[%d])", org, field, j)
			} else {
				members[org] = k
			}
		}
		publishers := make(map[string]int, len(c.Publishers))
		for k, org := range c.Publishers {
			f := fmt.Sprintf("%s.publishers[%d]", field, k)
			_, known := orgIndex[org]
			_, member := members[org]
			switch {
			case !known:
				fail(f, "unknown org %q", org)
			case !member:
				fail(f, "publisher %q is not a member of channel %q", org, c.Name)
			}
			if j, dup := publishers[org]; dup {
				fail(f, "publisher %q listed twice (also %s.publishers[%d])", org, field, j)
			} else {
				publishers[org] = k
			}
		}
	}
	return errs
}

// checkName says what is wrong with a non-empty name, or "" if nothing is.
// checkEntryName checks the name of entry i of a list (kind "org" in list
// "orgs"): present, valid, and not a duplicate, recording it in index.
func checkEntryName(fail func(field, format string, args ...any), field, kind, list, name string, i int, index map[string]int) {
	switch {
	case name == "":
		fail(field+".name", "missing %s name", kind)
	case checkName(name) != "":
		fail(field+".name", "invalid %s name %q: %s", kind, name, checkName(name))
	default:
		if j, dup := index[name]; dup {
			fail(field+".name", "duplicate %s %q (also %s[%d])", kind, name, list, j)
		} else {
			index[name] = i
		}
	}
}

func checkName(name string) string {
	if len(name) > MaxNameLen {
		return fmt.Sprintf("longer than %d bytes", MaxNameLen)
	}
	if !utf8.ValidString(name) {
		return "not valid UTF-8"
	}
	for _, r := range name {
		switch {
		case unicode.IsSpace(r):
			return "contains white space"
		case !unicode.IsPrint(r):
			return fmt.Sprintf("contains the unprintable character %U", r)
		}
	}
	return ""
}

// Network is a validated, immutable network config with the lookups the rest
// of the node needs. Build one with ParseNetwork, LoadNetwork, NewNetwork or
// GenerateNetwork. It is safe for concurrent use.
type Network struct {
	spec     NetworkSpec
	orgs     map[string]int
	channels map[string]*channelIndex
}

// channelIndex is a channel with its member and publisher sets.
type channelIndex struct {
	Channel
	members    map[string]bool
	publishers map[string]bool // resolved: every member when Publishers is empty
	position   int
}

// NewNetwork validates spec and builds a Network from a copy of it. The error
// lists every mistake (see NetworkSpec.Validate).
func NewNetwork(spec NetworkSpec) (*Network, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return buildNetwork(spec), nil
}

// buildNetwork indexes a spec already known to be valid.
func buildNetwork(spec NetworkSpec) *Network {
	spec = cloneSpec(spec)
	n := &Network{
		spec:     spec,
		orgs:     make(map[string]int, len(spec.Orgs)),
		channels: make(map[string]*channelIndex, len(spec.Channels)),
	}
	for i, o := range spec.Orgs {
		n.orgs[o.Name] = i
	}
	for i, c := range spec.Channels {
		ci := &channelIndex{
			Channel:    c,
			members:    make(map[string]bool, len(c.Orgs)),
			publishers: make(map[string]bool, len(c.Orgs)),
			position:   i,
		}
		for _, org := range c.Orgs {
			ci.members[org] = true
		}
		publishers := c.Publishers
		if len(publishers) == 0 {
			publishers = c.Orgs
		}
		for _, org := range publishers {
			ci.publishers[org] = true
		}
		n.channels[c.Name] = ci
	}
	return n
}

func cloneSpec(s NetworkSpec) NetworkSpec {
	out := NetworkSpec{Name: s.Name, Orgs: slices.Clone(s.Orgs)}
	if s.Channels != nil {
		out.Channels = make([]Channel, len(s.Channels))
		for i, c := range s.Channels {
			out.Channels[i] = cloneChannel(c)
		}
	}
	return out
}

func cloneChannel(c Channel) Channel {
	return Channel{Name: c.Name, Orgs: slices.Clone(c.Orgs), Publishers: slices.Clone(c.Publishers)}
}

// Name is the network's name; every certificate names it.
func (n *Network) Name() string { return n.spec.Name }

// Spec returns a copy of the network's description, to edit and pass to
// NewNetwork again (for example to add a channel).
func (n *Network) Spec() NetworkSpec { return cloneSpec(n.spec) }

// Orgs returns the orgs in config order.
func (n *Network) Orgs() []Org { return slices.Clone(n.spec.Orgs) }

// Channels returns the channels in config order.
func (n *Network) Channels() []Channel { return n.Spec().Channels }

// Org looks an org up by name.
func (n *Network) Org(name string) (Org, bool) {
	i, ok := n.orgs[name]
	if !ok {
		return Org{}, false
	}
	return n.spec.Orgs[i], true
}

// Channel looks a channel up by name. Its Publishers are as configured
// (possibly empty, meaning every member); use MayPublish to decide.
func (n *Network) Channel(name string) (Channel, bool) {
	ci, ok := n.channels[name]
	if !ok {
		return Channel{}, false
	}
	return cloneChannel(ci.Channel), true
}

// ChannelOrgs maps each channel to its member orgs, in config order: the
// shape the routing planner takes. The map is the caller's to keep.
func (n *Network) ChannelOrgs() map[string][]string {
	m := make(map[string][]string, len(n.spec.Channels))
	for _, c := range n.spec.Channels {
		m[c.Name] = slices.Clone(c.Orgs)
	}
	return m
}

// OrgInChannel reports whether org is a member of channel. Unknown names are
// simply not members.
func (n *Network) OrgInChannel(org, channel string) bool {
	ci, ok := n.channels[channel]
	return ok && ci.members[org]
}

// MayPublish reports whether peers of org may publish blocks on channel: the
// org is a member and either the channel lists it as a publisher or lists no
// publishers at all.
func (n *Network) MayPublish(org, channel string) bool {
	ci, ok := n.channels[channel]
	return ok && ci.publishers[org]
}

// ChannelsOfOrg returns the channels org is a member of, in config order;
// none for an unknown org.
func (n *Network) ChannelsOfOrg(org string) []string {
	var out []string
	for _, c := range n.spec.Channels {
		if n.channels[c.Name].members[org] {
			out = append(out, c.Name)
		}
	}
	return out
}
