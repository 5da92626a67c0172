// Command bench takes every figure `make bench` prints (infra/bench) on the
// emulators it is given (run it under infra/cmd/withemulators, as make bench
// does) and prints them as one table.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"fulfillment/infra/bench"
	"fulfillment/shared/runtime/runtimeenv"
	"fulfillment/shared/testsupport/localproc"
)

func main() {
	withFunctionsGoDebug()
	if err := realMain(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// withFunctionsGoDebug restarts the bench with the functions' GODEBUG
// (runtimeenv) unless it has it. The bench's own process and the local
// servers it starts (Mailpit, stripe-mock) stand in for what runs elsewhere
// on GCP, yet share the stack's two cores: with the setting they take less
// of them (docs/testing.md). The runtime reads GODEBUG only at start, hence
// the restart; if it fails, the bench runs as it is.
func withFunctionsGoDebug() {
	env, restart := withGoDebug(os.Environ())
	if !restart {
		return
	}
	exe, err := os.Executable()
	if err == nil {
		err = syscall.Exec(exe, os.Args, env)
	}
	fmt.Fprintln(os.Stderr, "bench: running without the functions' GODEBUG:", err)
}

// withGoDebug is environ with runtimeenv.GoDebug added to its GODEBUG, and
// whether that changed it. The GODEBUG it had stays, and it keeps one
// GODEBUG entry: the runtime reads the first of several.
func withGoDebug(environ []string) ([]string, bool) {
	godebug := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			godebug = v
			break
		}
	}
	if len(runtimeenv.Missing(godebug)) == 0 {
		return environ, false
	}
	if godebug != "" {
		godebug += ","
	}
	env := slices.DeleteFunc(slices.Clone(environ), func(kv string) bool { return strings.HasPrefix(kv, "GODEBUG=") })
	return append(env, "GODEBUG="+godebug+runtimeenv.GoDebug), true
}

func realMain() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := localproc.ModuleRoot()
	if err != nil {
		return err
	}
	_, err = bench.Run(ctx, root, bench.Full, os.Stdout)
	return err
}
