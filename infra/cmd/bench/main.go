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
// of them (the bench 1.6-1.9 ms of CPU per order against 1.8-2.0, Mailpit
// 0.7-0.8 against 0.8-0.9, docs/testing.md). The runtime reads GODEBUG only
// at start, hence the restart; if it fails, the bench runs as it is.
func withFunctionsGoDebug() {
	godebug := os.Getenv("GODEBUG")
	if len(runtimeenv.Missing(godebug)) == 0 {
		return
	}
	if godebug != "" {
		godebug += ","
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GODEBUG=") })
	exe, err := os.Executable()
	if err == nil {
		err = syscall.Exec(exe, os.Args, append(env, "GODEBUG="+godebug+runtimeenv.GoDebug))
	}
	fmt.Fprintln(os.Stderr, "bench: running without the functions' GODEBUG:", err)
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
