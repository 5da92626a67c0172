// Command localstack is `make run`: the whole system on this machine, on its
// embedded defaults, until Ctrl-C. It writes .localstack/env so the operator
// CLI (fulfillctl) finds the emulators, the webhook and the doubles.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"fulfillment/infra/localstack"
)

func main() {
	if err := realMain(); err != nil {
		fmt.Fprintln(os.Stderr, "localstack:", err)
		os.Exit(1)
	}
}

func realMain() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := localstack.RepoRoot()
	if err != nil {
		return err
	}
	dir := filepath.Join(root, ".localstack")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "stack.log")
	logs, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logs.Close()
	fmt.Printf("starting the emulators, stripe-mock, the doubles and %d functions (about 30 s)...\n", len(localstack.Functions))
	// The functions read the time from this file; empty means real time.
	// `fulfillctl clock` moves the whole stack through a subscription's year.
	clockPath := filepath.Join(dir, "clock")
	if err := os.WriteFile(clockPath, nil, 0o644); err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	s, err := localstack.Start(startCtx, localstack.Options{Root: root, Logs: logs, WebhookPort: localstack.DefaultWebhookPort, ClockFile: clockPath})
	cancel()
	if err != nil {
		return fmt.Errorf("%w (logs: %s)", err, logPath)
	}
	defer s.Stop()
	env := map[string]string{
		"GOOGLE_CLOUD_PROJECT":    s.Project,
		"FIRESTORE_EMULATOR_HOST": s.Emulators.FirestoreHost,
		"PUBSUB_EMULATOR_HOST":    s.Emulators.PubSubHost,
		"FULFILLMENT_WEBHOOK_URL": s.URLs["checkout-webhook"],
		"STRIPE_WEBHOOK_SECRET":   localstack.WebhookSecret,
		"GITLAB_DOUBLE_URL":       s.GitLab.URL(),
		"SALESFORCE_DOUBLE_URL":   s.Salesforce.URL(),
		"SLACK_DOUBLE_URL":        s.Slack.URL(),
		"PAGERDUTY_DOUBLE_URL":    s.PagerDuty.URL(),
		"STRIPE_PROXY_URL":        s.Stripe.URL(),
		"FULFILLMENT_TRACES_URL":  s.Traces.URL(),
		"SEAT_USAGE_URL":          s.URLs["seat-usage"],
		"LICENSING_URL":           s.URLs["licensing"],
		"FULFILLMENT_CLOCK_FILE":  clockPath,
		// The checkout API takes ID tokens of the local OIDC issuer (docs/checkout.md).
		"CHECKOUT_URL":   s.URLs["checkout"],
		"CHECKOUT_TOKEN": s.OIDC.Token(localstack.CheckoutCaller, localstack.CheckoutAudience, 24*time.Hour),
	}
	if err := writeEnv(filepath.Join(dir, "env"), env); err != nil {
		return err
	}
	fmt.Println("\nfunctions:")
	for _, fn := range localstack.Functions {
		fmt.Printf("  %-24s %s\n", fn, s.URLs[fn])
	}
	fmt.Printf("\nemulators:\n  %-24s %s\n  %-24s %s\n", "firestore", s.Emulators.FirestoreHost, "pubsub", s.Emulators.PubSubHost)
	fmt.Printf("\ndoubles (GET <url>/_calls lists what they received):\n")
	for _, d := range [][2]string{{"gitlab", s.GitLab.URL()}, {"salesforce", s.Salesforce.URL()}, {"slack", s.Slack.URL()}, {"pagerduty", s.PagerDuty.URL()}, {"stripe (stripe-mock)", s.Stripe.URL()}} {
		fmt.Printf("  %-24s %s\n", d[0], d[1])
	}
	fmt.Printf("\ntraces (OTLP/HTTP receiver): %s\n", s.Traces.URL())
	fmt.Printf("\nmail (Mailpit): web UI %s, SMTP 127.0.0.1:%d: every customer e-mail lands here\n", s.Mailpit.UIURL, s.Mailpit.SMTPPort)
	fmt.Printf("\nproject %s; logs in %s\n", s.Project, logPath)
	fmt.Println("try: go run ./infra/cmd/fulfillctl purchase   (then: fulfillctl show|trace <subscription id>)")
	fmt.Println("Ctrl-C stops everything.")
	<-ctx.Done()
	fmt.Println("\nstopping...")
	return nil
}

func writeEnv(path string, env map[string]string) error {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b []byte
	for _, k := range keys {
		b = fmt.Appendf(b, "%s=%s\n", k, env[k])
	}
	return os.WriteFile(path, b, 0o644)
}
