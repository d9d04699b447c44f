package testnet

import (
	"os"
	"runtime"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// TestHostileFrames: the attack frames are what they claim: a length prefix
// and a body of that length that decodes, in full, to the items named.
func TestHostileFrames(t *testing.T) {
	frame := func(t *testing.T, f []byte) []byte {
		t.Helper()
		size, n := protowire.ConsumeVarint(f)
		if n < 0 || int(size) != len(f)-n {
			t.Fatalf("length prefix %d for a body of %d bytes", size, len(f)-n)
		}
		return f[n:]
	}
	var b wire.Batch
	if err := proto.Unmarshal(frame(t, emptyEnvelopes(4096)), &b); err != nil || len(b.Envelopes) != 2048 {
		t.Fatalf("emptyEnvelopes(4096): %d envelopes, err %v; want 2048", len(b.Envelopes), err)
	}
	var r wire.PullRequest
	if err := proto.Unmarshal(frame(t, emptyRanges(4096)), &r); err != nil || len(r.GetFetch().GetRanges()) < 2000 {
		t.Fatalf("emptyRanges(4096): %d ranges, err %v; want about 2040", len(r.GetFetch().GetRanges()), err)
	}
}

// TestProcReadsItself: the /proc readers give this process's own figures.
func TestProcReadsItself(t *testing.T) {
	if runtime.GOOS != "linux" {
		if procSupported() == nil {
			t.Fatal("procSupported without /proc")
		}
		return
	}
	rss, err := procRSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Fatalf("procRSS = %d, %v; want at least 1 MiB", rss, err)
	}
	busy := 0
	for i := range 50_000_000 {
		busy += i
	}
	cpu, err := procCPU(os.Getpid())
	if err != nil || cpu <= 0 || busy == 0 {
		t.Fatalf("procCPU = %v, %v; want some CPU time", cpu, err)
	}
}
