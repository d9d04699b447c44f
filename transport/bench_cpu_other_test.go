//go:build !unix

package transport

import "time"

// cpuTime is unknown here; the benchmark then reports no CPU time.
func cpuTime() time.Duration { return 0 }
