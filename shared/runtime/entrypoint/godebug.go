package entrypoint

import (
	"log/slog"
	"os"
	"strings"

	"fulfillment/shared/runtime/runtimeenv"
)

// warnOfMissingGoDebug logs, once at start, the runtime settings of
// runtimeenv.GoDebug the process was started without: the runtime reads them
// only at start, so the function cannot set them itself. It runs all the
// same, at more CPU per request.
func warnOfMissingGoDebug(logger *slog.Logger) {
	godebug := os.Getenv("GODEBUG")
	if missing := runtimeenv.Missing(godebug); len(missing) > 0 {
		logger.Warn("GODEBUG lacks settings functions run with (the base image sets them); serving at more CPU per request",
			"godebug", godebug, "missing", strings.Join(missing, ","))
	}
}
