package transport

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests. No ignore
// list is needed: every test closes its transports, then its hosts (or
// mocknet), and go-libp2p v0.51 hosts stop all their goroutines on Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
