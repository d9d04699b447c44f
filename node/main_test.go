package node_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a node starts is stopped and waited for by Close; the
// clusters of these tests close every node and host.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
