package testnet

import (
	"fmt"

	"github.com/fabgossip/fabgossip/node/identity"
)

// OrgNames returns the names of n orgs: org1, org2, ...
func OrgNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("org%d", i+1)
	}
	return out
}

// DefaultChannels returns n channels over orgs with different org sets and
// publishers in different orgs: channel chK has the first len(orgs)-K orgs
// (at least one) as members, and its K-th member (cyclically) as its only
// publisher org. For three orgs and two channels: ch0 {org1,org2,org3}
// published by org1, ch1 {org1,org2} published by org2, so org3 is the
// non-member that must never see a block of ch1.
func DefaultChannels(orgs []string, n int) []identity.Channel {
	out := make([]identity.Channel, n)
	for k := range out {
		members := append([]string(nil), orgs[:max(1, len(orgs)-k)]...)
		out[k] = identity.Channel{
			Name:       fmt.Sprintf("ch%d", k),
			Orgs:       members,
			Publishers: []string{members[k%len(members)]},
		}
	}
	return out
}
