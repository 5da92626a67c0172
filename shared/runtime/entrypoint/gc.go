package entrypoint

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// gcPercent is the collector's target for a function: the heap may grow to
// five times what is live before a collection. A function's live heap is a
// few MiB and its container has hundreds, while at the default (100) the
// collector ran every few dozen requests and took about a fifth of the
// webhook's CPU: 400 took its CPU per delivery down by 17-27% at
// concurrency 1, 8 and 32 (make bench, alternating runs, docs/testing.md).
const gcPercent = 400

// memoryLimitShare of the container's memory is the heap's soft limit, so a
// function whose live heap grows (a large page of results) collects more
// often near the limit instead of running out of memory.
const memoryLimitShare = 0.8

// cgroupMemoryMax is where the container's memory limit is read (cgroup v2).
var cgroupMemoryMax = "/sys/fs/cgroup/memory.max"

// tuneGC sets gcPercent and the soft memory limit, each unless the
// environment sets it (GOGC, GOMEMLIMIT) or, for the limit, no container
// limit can be read.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if limit, ok := containerMemory(); ok {
		debug.SetMemoryLimit(int64(float64(limit) * memoryLimitShare))
	}
}

// containerMemory is the container's memory limit in bytes, if it has one.
func containerMemory() (int64, bool) {
	b, err := os.ReadFile(cgroupMemoryMax)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64) // "max": no limit
	return n, err == nil && n > 0
}
