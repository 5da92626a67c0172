package emulator

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// RunTests is a TestMain body: it uses the emulators the environment points
// at, or starts a pair for this package and stops it after the tests.
func RunTests(m *testing.M) {
	if _, ok := FromEnv(); ok {
		os.Exit(m.Run())
	}
	e, err := Start(context.Background(), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "emulators:", err)
		os.Exit(1)
	}
	e.Export()
	code := m.Run()
	e.Stop()
	os.Exit(code)
}
