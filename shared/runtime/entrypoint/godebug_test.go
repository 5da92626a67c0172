package entrypoint

import (
	"log/slog"
	"strings"
	"testing"

	"fulfillment/shared/runtime/runtimeenv"
)

func TestAFunctionStartedWithoutItsGoDebugSaysSo(t *testing.T) {
	for _, c := range []struct {
		godebug string
		warns   bool
	}{
		{"", true},
		{"http2debug=1", true},
		{runtimeenv.GoDebug, false},
		{"http2debug=1," + runtimeenv.GoDebug, false},
	} {
		t.Setenv("GODEBUG", c.godebug)
		var logs strings.Builder
		warnOfMissingGoDebug(slog.New(slog.NewTextHandler(&logs, nil)))
		if warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), runtimeenv.GoDebug); warned != c.warns {
			t.Errorf("GODEBUG=%q: logged %q, want a warning naming %s: %v", c.godebug, logs.String(), runtimeenv.GoDebug, c.warns)
		}
	}
}
