package tree

import (
	"fmt"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/routing"
)

// orgsView: channel c over orgs; org i has exts[i] external and two
// internal peers, all eligible. Org "Z" has no external peer.
func orgsView(exts ...int) routing.View {
	in := map[string]bool{"c": true}
	v := routing.View{ChannelOrgs: map[string][]string{"c": nil}}
	for i, n := range exts {
		org := fmt.Sprintf("O%d", i)
		if n == 0 {
			org = "Z"
		}
		v.ChannelOrgs["c"] = append(v.ChannelOrgs["c"], org)
		for k := range n + 2 {
			id := peer.ID(fmt.Sprintf("%s-%d", org, k))
			v.Members = append(v.Members, routing.Member{ID: id, Org: org, External: k < n, Channels: in, Alive: true})
		}
	}
	v.Self = v.Members[0]
	return v
}

// TestDoorPairsMatchCandidates: every peer computes the same pairs from the
// same view (a chunk assigned to a pair is sent by exactly one peer), no
// pair links an org with itself, and the pairs a peer sends by are the
// doors Candidates links it to.
func TestDoorPairsMatchCandidates(t *testing.T) {
	v := orgsView(3, 2, 1)
	orgs := v.ChannelOrgs["c"]
	for _, doors := range []int{1, 2, 3} {
		for _, m := range v.Members {
			if !m.External {
				continue
			}
			self := viewFor(v, string(m.ID))
			var fromPairs []peer.ID
			for _, org := range orgs {
				pairs := DoorPairs(self, "c", m.Org, org, doors)
				if org == m.Org && pairs != nil {
					t.Fatalf("pairs within org %s: %v", org, pairs)
				}
				// Any other peer computes the same pairs.
				if other := DoorPairs(viewFor(v, "O0-3"), "c", m.Org, org, doors); !slices.Equal(pairs, other) {
					t.Fatalf("doors %d, %s→%s: %v from %s, %v from O0-3", doors, m.Org, org, pairs, m.ID, other)
				}
				for _, p := range pairs {
					if p[0] == m.ID {
						fromPairs = append(fromPairs, p[1])
					}
				}
			}
			var fromCands []peer.ID
			for _, c := range Candidates(self, "c", doors) {
				if c.CrossOrg {
					fromCands = append(fromCands, c.ID)
				}
			}
			slices.Sort(fromPairs)
			if fromPairs = slices.Compact(fromPairs); !slices.Equal(fromPairs, fromCands) {
				t.Errorf("doors %d, %s: pairs give doors %v, Candidates %v", doors, m.ID, fromPairs, fromCands)
			}
		}
	}
}

// TestChunkOrgsTree: the orgs that forward a block's chunks form a tree
// rooted at the publisher's org: every other org with an external peer has
// exactly one parent, no org has more than fanout children, every org is
// reached from the root, and an org without external peers takes no part.
func TestChunkOrgsTree(t *testing.T) {
	v := orgsView(2, 2, 1, 2, 3, 0, 2, 2)
	for _, root := range []string{"O0", "O3"} {
		for _, fanout := range []int{1, 2, 3} {
			parents := map[string]int{}
			for _, org := range v.ChannelOrgs["c"] {
				kids := ChunkOrgs(v, "c", root, org, fanout)
				if len(kids) > fanout {
					t.Errorf("root %s, fanout %d: %s forwards to %d orgs", root, fanout, org, len(kids))
				}
				for _, k := range kids {
					parents[k]++
				}
			}
			if ChunkOrgs(v, "c", root, "Z", fanout) != nil || parents["Z"] != 0 {
				t.Errorf("root %s: the org without external peers is in the tree", root)
			}
			reached := map[string]bool{root: true}
			for queue := []string{root}; len(queue) > 0; queue = queue[1:] {
				for _, k := range ChunkOrgs(v, "c", root, queue[0], fanout) {
					if reached[k] {
						t.Fatalf("root %s, fanout %d: %s reached twice", root, fanout, k)
					}
					reached[k] = true
					queue = append(queue, k)
				}
			}
			for _, org := range v.ChannelOrgs["c"] {
				want := 1
				if org == root || org == "Z" {
					want = 0
				}
				if parents[org] != want || (org != "Z") != reached[org] {
					t.Errorf("root %s, fanout %d: %s has %d parents (want %d), reached %v", root, fanout, org, parents[org], want, reached[org])
				}
			}
		}
	}
}
