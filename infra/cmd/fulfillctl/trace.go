package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"

	"fulfillment/infra/localstack/tracing"
)

var traceIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// traceCmd prints the span tree of a trace id, or of every trace about a
// subscription (its purchase, renewals, failures), from the local stack's
// trace receiver.
func traceCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	all := fs.Bool("all", false, "also show the client libraries' spans (Firestore, gRPC)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if args = fs.Args(); len(args) != 1 {
		return errors.New("usage: trace [-all] TRACE_ID|SUBSCRIPTION_ID")
	}
	base := os.Getenv("FULFILLMENT_TRACES_URL")
	if base == "" {
		return errors.New("FULFILLMENT_TRACES_URL not set: is `make run` running?")
	}
	c := tracing.Client{BaseURL: base}
	ids := []string{args[0]}
	if !traceIDPattern.MatchString(args[0]) {
		var err error
		if ids, err = c.TracesOf(ctx, args[0]); err != nil {
			return err
		}
		if len(ids) == 0 {
			return fmt.Errorf("no trace about %s yet", args[0])
		}
	}
	for i, id := range ids {
		spans, err := c.Trace(ctx, id)
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Println()
		}
		tracing.Render(os.Stdout, spans, *all)
	}
	return nil
}
