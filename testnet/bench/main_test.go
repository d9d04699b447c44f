package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// Every system's run closes its hosts, nodes and routers, and the loss and
// egress wrappers start no goroutine of their own.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
