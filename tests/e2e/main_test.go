// Package e2e drives the whole pipeline through the local stack: signed
// webhooks in, push subscriptions between the functions on the official
// emulators, and the recording doubles of GitLab, Salesforce, Slack,
// PagerDuty and Stripe (stripe-mock) out.
package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"fulfillment/infra/localstack"
	"fulfillment/shared/testsupport/emulator"
	"fulfillment/shared/testsupport/logbuf"
)

var stack *localstack.Stack

// stackLogs holds what every process of the stack logged (see trace_test.go).
var stackLogs = &logbuf.Buffer{}

// Alerting and renewal settings the tests rely on.
const (
	alertThreshold = 5
	// renewalLead reaches past a whole term, so a subscription bought now is due.
	renewalLead = "9600h"
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	var err error
	stack, err = localstack.Start(ctx, localstack.Options{
		Project: emulator.NewProject("e2e"),
		Logs:    stackLogs,
		Env: map[string]map[string]string{
			"failed-payment-alerting": {"ALERT_THRESHOLD": fmt.Sprint(alertThreshold), "ALERT_WINDOW": "1h"},
			"renewal":                 {"RENEWAL_LEAD_TIME": renewalLead},
		},
	})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "local stack:", err, "\n", stackLogs.String())
		os.Exit(1)
	}
	code := m.Run()
	stack.Stop()
	if code != 0 && os.Getenv("E2E_LOGS") != "" {
		fmt.Fprintln(os.Stderr, stackLogs.String())
	}
	os.Exit(code)
}
