package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestProfiles: --cpuprofile and --memprofile write gzipped pprof profiles,
// and a path that cannot be written fails before the run, not after it.
func TestProfiles(t *testing.T) {
	dir := t.TempDir()
	cpu, mem := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "mem.pprof")
	stop, err := startProfiles(cpu, mem)
	if err != nil {
		t.Fatal(err)
	}
	var sink []byte
	for i := range 1 << 16 {
		sink = append(sink, byte(i))
	}
	_ = sink
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{cpu, mem} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
			t.Errorf("%s is not a gzipped profile (%d bytes)", filepath.Base(p), len(b))
		}
	}
	if _, err := startProfiles("", filepath.Join(dir, "no", "such", "dir", "mem.pprof")); err == nil {
		t.Error("an unwritable --memprofile path was accepted")
	}
}
