//go:build unix

package retrytest

import (
	"syscall"
	"time"
)

// ProcessCPU is this process's user and system CPU time (0 where the
// system does not say). A benchmark on a shared machine reports CPU per
// attempt beside the wall-clock rate: other processes' load slows the
// second far more than it inflates the first.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
