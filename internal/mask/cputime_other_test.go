//go:build !linux

package mask

import "time"

func threadCPU() time.Duration { return 0 }
