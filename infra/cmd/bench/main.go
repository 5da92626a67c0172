// Command bench takes every figure `make bench` prints (infra/bench) on the
// emulators it is given (run it under infra/cmd/withemulators, as make bench
// does) and prints them as one table.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"fulfillment/infra/bench"
	"fulfillment/shared/testsupport/localproc"
)

func main() {
	if err := realMain(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
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
