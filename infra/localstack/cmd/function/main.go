// Command function is the local stack's entry point for every function: the
// function's own Setup served by the same functions-framework entry point as
// its cmd/gcp, plus the test hooks production never has, read here and only
// here:
//
//   - FULFILLMENT_CLOCK_FILE: every Now reads this file (shared/domain/clock),
//     so a test moves the whole stack through a subscription's year;
//   - FAULT_CRASH: crash points the process exits at (shared/runtime/faultpoint).
//
// FUNCTION_TARGET names the function to serve.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"sort"

	"fulfillment/functions/checkout"
	checkoutwebhook "fulfillment/functions/checkout-webhook"
	crmpush "fulfillment/functions/crm-push"
	failedpaymentalerting "fulfillment/functions/failed-payment-alerting"
	"fulfillment/functions/licensing"
	"fulfillment/functions/notifications"
	paymentresult "fulfillment/functions/payment-result"
	"fulfillment/functions/provisioning"
	"fulfillment/functions/renewal"
	seatusage "fulfillment/functions/seat-usage"
	"fulfillment/shared/domain/clock"
	"fulfillment/shared/runtime/entrypoint"
	"fulfillment/shared/runtime/faultpoint"
	"fulfillment/shared/runtime/logging"
)

// setups are the functions this main can serve, by FUNCTION_TARGET.
var setups = map[string]entrypoint.Setup{
	checkoutwebhook.Name:       checkoutwebhook.Setup,
	paymentresult.Name:         paymentresult.Setup,
	provisioning.Name:          provisioning.Setup,
	crmpush.Name:               crmpush.Setup,
	failedpaymentalerting.Name: failedpaymentalerting.Setup,
	renewal.Name:               renewal.Setup,
	seatusage.Name:             seatusage.Setup,
	notifications.Name:         notifications.Setup,
	licensing.Name:             licensing.Setup,
	checkout.Name:              checkout.Setup,
}

func main() {
	name := os.Getenv("FUNCTION_TARGET")
	setup, ok := setups[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "function: FUNCTION_TARGET=%q is none of %v\n", name, names())
		os.Exit(2)
	}
	hooks, err := hooksFromEnv(logging.Default(name))
	if err != nil {
		fmt.Fprintln(os.Stderr, "function:", err)
		os.Exit(2)
	}
	entrypoint.RunGCPWith(name, setup, hooks)
}

// hooksFromEnv reads the test stack's variables: the clock file into the
// hooks, the crash points into faultpoint.
func hooksFromEnv(logger *slog.Logger) (entrypoint.Hooks, error) {
	var h entrypoint.Hooks
	if path := os.Getenv(clock.FileEnv); path != "" {
		h.Clock = &clock.File{Path: path}
		logger.Warn("time is read from "+clock.FileEnv+": test stacks only", "path", path)
	}
	if err := faultpoint.Enable(os.Getenv(faultpoint.EnvVar)); err != nil {
		return h, err
	}
	return h, nil
}

func names() []string {
	out := make([]string, 0, len(setups))
	for n := range setups {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
