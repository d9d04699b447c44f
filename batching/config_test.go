package batching

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigIsFabrics(t *testing.T) {
	c := DefaultConfig()
	if c.Iterations != 1 || c.BurstSize != 10 || c.Latency != 10*time.Millisecond {
		t.Fatalf("DefaultConfig() = %+v, want Fabric's 1 / 10 / 10ms", c)
	}
	if c.MaxBatchBytes != 0 || c.MaxPending != 10_000 {
		t.Fatalf("DefaultConfig() = %+v, want no byte budget and MaxPending 10000", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string // substrings of the error; nil means valid
	}{
		{"default", func(*Config) {}, nil},
		{"push disabled", func(c *Config) { c.Iterations = 0 }, nil},
		{"burst of one", func(c *Config) { c.BurstSize = 1 }, nil},
		{"byte budget", func(c *Config) { c.MaxBatchBytes = 1 << 20 }, nil},
		{"pending equals burst", func(c *Config) { c.MaxPending = c.BurstSize }, nil},
		{"negative iterations", func(c *Config) { c.Iterations = -1 }, []string{"Iterations", "-1"}},
		{"zero burst", func(c *Config) { c.BurstSize = 0 }, []string{"BurstSize", "0"}},
		{"zero latency", func(c *Config) { c.Latency = 0 }, []string{"Latency", "0s"}},
		{"negative latency", func(c *Config) { c.Latency = -time.Second }, []string{"Latency", "-1s"}},
		{"negative budget", func(c *Config) { c.MaxBatchBytes = -5 }, []string{"MaxBatchBytes", "-5"}},
		{"pending below burst", func(c *Config) { c.MaxPending = 9 }, []string{"MaxPending", "9", "BurstSize (10)"}},
		{"zero pending", func(c *Config) { c.MaxPending = 0 }, []string{"MaxPending", "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error naming %q", tt.want)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Validate() = %q, want it to contain %q", err, s)
				}
			}
		})
	}
}
