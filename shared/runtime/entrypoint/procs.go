package entrypoint

import (
	"fmt"
	"log/slog"

	"go.uber.org/automaxprocs/maxprocs"
)

// tuneProcs sets GOMAXPROCS to the container's CPU quota rounded down, at
// least 1, unless the environment sets GOMAXPROCS; with no quota it leaves
// the runtime's own. Go rounds a quota under 2 up to 2: on Cloud Run's one
// vCPU two threads then take turns on one CPU, and the many hand-overs of a
// request that waits on Firestore and Pub/Sub become sleeps and wake-ups of
// OS threads. With 1, the webhook's CPU per delivery at concurrency 1 fell
// from 400-470 µs to about 300 (make bench, docs/testing.md).
func tuneProcs(logger *slog.Logger) {
	_, err := maxprocs.Set(maxprocs.Logger(func(format string, args ...any) {
		logger.Debug("GOMAXPROCS", "decision", fmt.Sprintf(format, args...))
	}))
	if err != nil {
		logger.Warn("could not read the CPU quota; GOMAXPROCS left as the runtime set it", "error", err.Error())
	}
}
