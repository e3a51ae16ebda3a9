//go:build unix

package policy

import (
	"syscall"
	"testing"
	"time"
)

// reportCPU reports the process CPU time (user and system, GC included) per
// operation as cpu-ns/op, a figure that stays honest on a shared, loaded
// machine where ns/op measures the wait for a core as well.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
