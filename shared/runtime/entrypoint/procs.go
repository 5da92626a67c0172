package entrypoint

import (
	"fmt"
	"log/slog"
	"runtime"

	"go.uber.org/automaxprocs/maxprocs"
)

// tuneProcs sets GOMAXPROCS to the container's CPU quota rounded down, at
// least 1, unless the environment sets GOMAXPROCS; with no quota it leaves
// the runtime's own. Go rounds a quota under 2 up to 2: on Cloud Run's one
// vCPU two threads then take turns on one CPU, and the many hand-overs of a
// request that waits on Firestore and Pub/Sub become sleeps and wake-ups of
// OS threads. With 1, the webhook's CPU per delivery at concurrency 1 fell
// by a fifth (make bench, docs/testing.md). It logs what it decided, once.
func tuneProcs(logger *slog.Logger) {
	var decision string
	_, err := maxprocs.Set(maxprocs.Logger(func(format string, args ...any) {
		decision = fmt.Sprintf(format, args...)
	}))
	if err != nil {
		logger.Warn("could not read the CPU quota; GOMAXPROCS left as the runtime set it", "gomaxprocs", runtime.GOMAXPROCS(0), "error", err.Error())
		return
	}
	logger.Info("GOMAXPROCS set", "gomaxprocs", runtime.GOMAXPROCS(0), "decision", decision)
}
