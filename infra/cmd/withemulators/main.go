// Command withemulators starts one pair of official emulators (Firestore,
// Pub/Sub) on free ports, runs the command after "--" with
// FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST set, stops the pair, and
// exits with the command's status. `make test` runs `go test ./...` under it
// so every package shares one pair instead of starting its own.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"fulfillment/shared/testsupport/emulator"
)

func main() {
	os.Exit(realMain())
}

func realMain() int {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: withemulators -- command [args...]")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintln(os.Stderr, "starting the Firestore and Pub/Sub emulators...")
	e, err := emulator.Start(ctx, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "withemulators:", err)
		return 1
	}
	defer e.Stop()
	e.Export()
	fmt.Fprintf(os.Stderr, "emulators up: firestore %s, pubsub %s\n", e.FirestoreHost, e.PubSubHost)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode()
	case err != nil:
		fmt.Fprintln(os.Stderr, "withemulators:", err)
		return 1
	}
	return 0
}
