package store_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs the crash test's writer when the test binary is started as
// that child process (see TestCrashLeavesPrefix), and otherwise the tests,
// checking that none leaves a goroutine behind.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashWriterEnv); dir != "" {
		os.Exit(crashWriter(dir, os.Getenv(crashNoSyncEnv) != ""))
	}
	goleak.VerifyTestMain(m)
}
