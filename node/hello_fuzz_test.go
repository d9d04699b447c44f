package node_test

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/testnet"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// FuzzHello runs the answering side of the handshake on arbitrary
// sequences of hellos and holds it to a model: the target answers (and so
// discloses its alive) exactly when the caller is a peer it may know,
// presenting its own genuine alive, and not rejected since; every other
// hello (arbitrary bytes, a genuine alive altered, another peer's alive
// replayed, a genuine alive of a peer of an org with no channel in common)
// is refused, and its caller is refused from then on, genuine or not, for
// its back-off.
func FuzzHello(f *testing.F) {
	topo := testnet.Topology{
		Network: "test",
		Orgs:    []testnet.OrgSpec{{Name: "A", Peers: 2, External: 1}, {Name: "C", Peers: 1, External: 1}},
		Channels: []identity.Channel{
			{Name: "ch", Orgs: []string{"A"}},
			{Name: "other", Orgs: []string{"C"}},
		},
	}
	c := startCluster(f, topo, testnet.Options{Seed: 41})
	target, friend, foreign := c.Peers[0], c.Peers[1], c.Peers[2]
	genuine := func(p *testnet.Peer) *wire.Envelope {
		env, err := p.HelloEnvelope()
		if err != nil {
			f.Fatal(err)
		}
		return env
	}
	friendEnv, foreignEnv := genuine(friend), genuine(foreign)
	stranger := peer.ID("stranger")
	callers := []peer.ID{friend.Host.ID(), foreign.Host.ID(), stranger}

	f.Add([]byte{0, 0, 0, 0})                // the friend, genuinely, twice
	f.Add([]byte{0, 2, 5, 0, 0, 0})          // an altered alive, then the genuine one
	f.Add([]byte{2, 0, 0, 0, 1, 1, 0, 0})    // the stranger replays the friend's alive
	f.Add([]byte{1, 1, 0, 0, 0, 3, 8, 8, 8}) // the foreign peer; the friend sends junk
	f.Fuzz(func(t *testing.T, ops []byte) {
		for _, p := range callers {
			target.Forgive(p)
		}
		rejected := map[peer.ID]bool{}
		for i := 0; i+1 < len(ops); i += 2 {
			from := callers[int(ops[i])%len(callers)]
			var env *wire.Envelope
			honest := false
			switch k := ops[i+1] % 4; k {
			case 0: // the caller's own genuine alive, if it has one
				switch from {
				case friend.Host.ID():
					env, honest = friendEnv, true
				case foreign.Host.ID():
					env = foreignEnv
				default:
					env = friendEnv
				}
			case 1: // another peer's genuine alive
				env = foreignEnv
				if from == foreign.Host.ID() {
					env = friendEnv
				}
			case 2: // the friend's alive with one byte changed
				env = proto.Clone(friendEnv).(*wire.Envelope)
				if len(env.Payload) > 0 {
					j := int(ops[i+1]) % len(env.Payload)
					env.Payload[j] ^= 1 + ops[i+1]
				}
			case 3: // the rest of the input, as an envelope
				env = &wire.Envelope{}
				if err := proto.Unmarshal(ops[i+2:], env); err != nil {
					env = &wire.Envelope{Payload: ops[i+2:]}
				}
				i = len(ops)
			}
			resp, err := target.HandleHello(from, &wire.Hello{Alive: env})
			want := honest && !rejected[from]
			switch {
			case want && err != nil:
				t.Fatalf("op %d: the genuine friend refused: %v", i/2, err)
			case !want && err == nil:
				t.Fatalf("op %d: answered %s (honest %v, rejected %v) with %v", i/2, from, honest, rejected[from], resp)
			case !want && resp != nil:
				t.Fatalf("op %d: refused but disclosed %v", i/2, resp)
			}
			if err != nil {
				rejected[from] = true
			}
		}
	})
}
