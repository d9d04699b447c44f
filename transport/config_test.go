package transport

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig invalid: %v", err)
	}
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string // in the error: the field and its value
	}{
		{"frame size", func(c *Config) { c.MaxFrameSize = 0 }, "MaxFrameSize must be positive, got 0"},
		{"queue", func(c *Config) { c.SendQueueSize = -1 }, "SendQueueSize must be positive, got -1"},
		{"queue bytes", func(c *Config) { c.SendQueueBytes = 0 }, "SendQueueBytes must be positive, got 0"},
		{"write timeout", func(c *Config) { c.WriteTimeout = 0 }, "WriteTimeout must be positive, got 0s"},
		{"open timeout", func(c *Config) { c.OpenTimeout = -time.Second }, "OpenTimeout must be positive, got -1s"},
		{"request timeout", func(c *Config) { c.RequestTimeout = 0 }, "RequestTimeout must be positive, got 0s"},
		{"backoff min", func(c *Config) { c.ReopenBackoffMin = 0 }, "ReopenBackoffMin must be positive, got 0s"},
		{"backoff order", func(c *Config) { c.ReopenBackoffMax = time.Millisecond },
			"ReopenBackoffMax must be at least ReopenBackoffMin (100ms), got 1ms"},
		{"idle", func(c *Config) { c.IdleTimeout = -time.Second }, "IdleTimeout must not be negative, got -1s"},
		{"requests", func(c *Config) { c.MaxInboundRequests = 0 }, "MaxInboundRequests must be positive, got 0"},
		{"hellos per peer", func(c *Config) { c.MaxInboundHellosPerPeer = 0 }, "MaxInboundHellosPerPeer must be positive, got 0"},
		{"hello first byte", func(c *Config) { c.HelloFirstByteTimeout = 0 }, "HelloFirstByteTimeout must be positive, got 0s"},
		{"hello size", func(c *Config) { c.MaxHelloSize = 0 }, "MaxHelloSize must be positive, got 0"},
		{"batch envelopes", func(c *Config) { c.MaxBatchEnvelopes = 0 }, "MaxBatchEnvelopes must be positive, got 0"},
		{"batch control", func(c *Config) { c.MaxBatchControl = -1 }, "MaxBatchControl must not be negative, got -1"},
		{"control numbers", func(c *Config) { c.MaxControlNumbers = -1 }, "MaxControlNumbers must not be negative, got -1"},
		{"pull ranges", func(c *Config) { c.MaxPullRanges = 0 }, "MaxPullRanges must be positive, got 0"},
		{"pull envelopes", func(c *Config) { c.MaxPullEnvelopes = 0 }, "MaxPullEnvelopes must be positive, got 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, time.Second
	for n := 1; n <= 100; n++ {
		want := min(lo<<min(n-1, 20), hi)
		for range 20 {
			if d := backoff(n, lo, hi); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %s, want in [%s, %s]", n, d, want/2, want)
			}
		}
	}
}

func TestNames(t *testing.T) {
	for r := range DropReason(numDropReasons) {
		if s := r.String(); s == "unknown" || s == "" {
			t.Errorf("DropReason(%d) has no name", r)
		}
	}
	for k := range ErrorKind(numErrorKinds) {
		if s := k.String(); s == "unknown" || s == "" {
			t.Errorf("ErrorKind(%d) has no name", k)
		}
	}
	if DropReason(-1).String() != "unknown" || ErrorKind(99).String() != "unknown" {
		t.Error("out-of-range values must print as unknown")
	}
}
