package shape

import (
	"testing"

	"go.uber.org/goleak"
)

// Every wrapper's goroutines end with the streams and hosts they serve.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
