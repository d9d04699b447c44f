package identity

import (
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// seeded is a deterministic randomness source for reproducible keys.
func seeded(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// mustKey makes a deterministic Ed25519 key.
func mustKey(t testing.TB, seed byte) crypto.PrivKey {
	t.Helper()
	key, err := GenerateKey(seeded(seed))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// mustPeer makes a deterministic peer key and its ID.
func mustPeer(t testing.TB, seed byte) (crypto.PrivKey, peer.ID) {
	t.Helper()
	key := mustKey(t, seed)
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return key, id
}

// testNetwork is fabnet: Org1, Org2, Org3; ch0 = {Org1, Org2} where only Org1
// publishes, ch1 = {Org2, Org3} where both publish.
func testNetwork(t testing.TB) (*Network, map[string]crypto.PrivKey) {
	t.Helper()
	n, cas, err := GenerateNetwork("fabnet", []string{"Org1", "Org2", "Org3"}, []Channel{
		{Name: "ch0", Orgs: []string{"Org1", "Org2"}, Publishers: []string{"Org1"}},
		{Name: "ch1", Orgs: []string{"Org2", "Org3"}},
	}, seeded(100))
	if err != nil {
		t.Fatal(err)
	}
	return n, cas
}

// assertContainsAll fails unless msg contains every want.
func assertContainsAll(t *testing.T, msg string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q\n  does not contain %q", msg, w)
		}
	}
}
