package testnet

import (
	"testing"

	"go.uber.org/goleak"
)

// Every process run, cluster and hostile helper stops and waits for what it
// starts.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
