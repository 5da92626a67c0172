package entrypoint

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// restoreGC puts the collector's settings back after a test changed them.
func restoreGC(t *testing.T) {
	percent := debug.SetGCPercent(100)
	debug.SetGCPercent(percent)
	limit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
}

func fakeCgroup(t *testing.T, content string) {
	path := filepath.Join(t.TempDir(), "memory.max")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	old := cgroupMemoryMax
	cgroupMemoryMax = path
	t.Cleanup(func() { cgroupMemoryMax = old })
}

func TestAFunctionCollectsAtItsOwnTargetWithinItsContainersMemory(t *testing.T) {
	restoreGC(t)
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	fakeCgroup(t, "536870912\n") // Cloud Run's default 512 MiB
	debug.SetMemoryLimit(math.MaxInt64)
	tuneGC()
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GC percent = %d, want %d", got, gcPercent)
	}
	container := int64(536870912)
	if got, want := debug.SetMemoryLimit(-1), int64(float64(container)*memoryLimitShare); got != want {
		t.Errorf("memory limit = %d, want %d (%.0f%% of the container's)", got, want, 100*memoryLimitShare)
	}
}

func TestTheEnvironmentsGCSettingsWin(t *testing.T) {
	restoreGC(t)
	t.Setenv("GOGC", "150")
	t.Setenv("GOMEMLIMIT", "64MiB")
	fakeCgroup(t, "536870912\n")
	debug.SetGCPercent(150)
	debug.SetMemoryLimit(math.MaxInt64)
	tuneGC()
	if got := debug.SetGCPercent(150); got != 150 {
		t.Errorf("GC percent = %d, want GOGC's 150", got)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("memory limit = %d, want the runtime's own (GOMEMLIMIT set)", got)
	}
}

func TestNoContainerLimitSetsNoMemoryLimit(t *testing.T) {
	restoreGC(t)
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	fakeCgroup(t, "max\n")
	debug.SetMemoryLimit(math.MaxInt64)
	tuneGC()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("memory limit = %d with no container limit, want none", got)
	}
}
