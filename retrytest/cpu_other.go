//go:build !unix

package retrytest

import "time"

// ProcessCPU is this process's CPU time: 0 here, where it is not read.
func ProcessCPU() time.Duration { return 0 }
