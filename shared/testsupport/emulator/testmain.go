package emulator

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// RunTests is a TestMain body: it uses the emulators the environment points
// at, or starts a pair for this package and stops it after the tests.
func RunTests(m *testing.M) { os.Exit(Run(m)) }

// Run is RunTests without the exit, for a TestMain that has more to stop.
func Run(m *testing.M) int {
	if _, ok := FromEnv(); ok {
		return m.Run()
	}
	e, err := Start(context.Background(), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "emulators:", err)
		return 1
	}
	e.Export()
	defer e.Stop()
	return m.Run()
}
