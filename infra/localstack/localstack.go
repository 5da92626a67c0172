// Package localstack runs the whole system on one machine: the official
// Firestore and Pub/Sub emulators, every function as its own process (its
// real Setup and GCP entry point, built by the stack's own main, cmd/function,
// which alone injects the test clock and crash points), push subscriptions between them from the topology,
// stripe-mock behind a recording proxy, and recording doubles for GitLab,
// Salesforce, Slack and PagerDuty. `make run` and the end-to-end tests both
// start it.
package localstack

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"fulfillment/infra/localstack/tracing"
	"fulfillment/infra/topology"
	"fulfillment/shared/adapters/firestore"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/clock"
	"fulfillment/shared/runtime/runtimeenv"
	"fulfillment/shared/testsupport/emulator"
	"fulfillment/shared/testsupport/localproc"
	"fulfillment/shared/testsupport/mailpit"
	"fulfillment/shared/testsupport/oidcissuer"
	"fulfillment/shared/testsupport/testdouble"
)

// Local secrets: fixed so the operator CLI can sign webhooks for the stack.
// They guard nothing; production secrets come from Secret Manager.
const (
	WebhookSecret      = "whsec_local_fulfillment"
	GitLabJWTKey       = "local-gitlab-jwt-signing-key-0123456789"
	SalesforceToken    = "00Dlocal!salesforce-access-token"
	PagerDutyKey       = "0123456789abcdef0123456789abcdef"
	StripeAPIKey       = "sk_test_123"
	SeatUsageTokenKey  = "local-seat-usage-token-key"
	DefaultProject     = "fulfillment-local"
	DefaultWebhookPort = 8080
	// SMTP credentials of the local Mailpit (it accepts any).
	SMTPUsername = "fulfillment"
	SMTPPassword = "local-smtp-password"
	// NoticePreferencesKey signs the opt-out links of non-essential e-mails.
	NoticePreferencesKey = "local-notice-preferences-key"
)

// SlackWebhookPath is the secret part of the local SLACK_WEBHOOK_URL (its
// host is the Slack double's).
const SlackWebhookPath = "/services/T000/B000/local"

// LicenseSeed is the local Ed25519 seed (base64) for self-managed licenses.
var LicenseSeed = base64.StdEncoding.EncodeToString([]byte("fulfillment-local-license-seed!!"))

// ActivationCodePepper is the local key of activation codes' hashes
// (provisioning and licensing require one).
const ActivationCodePepper = "fulfillment-local-activation-code-pepper"

// Functions lists every function, in start order.
var Functions = []string{"checkout-webhook", "payment-result", "provisioning", "crm-push", "failed-payment-alerting", "renewal", "seat-usage", "notifications", "licensing", "checkout"}

// Options shape a stack.
type Options struct {
	Project string // default DefaultProject
	Root    string // repository root (for go build); default: found from the working directory
	Logs    io.Writer
	// WebhookPort fixes checkout-webhook's port (0: any free port).
	WebhookPort int
	// Env adds or overrides function settings, per function name ("*" for all).
	Env map[string]map[string]string
	// ClockFile, when set, is the shared clock every function reads the time
	// from (shared/domain/clock): write it with clock.Set to move the stack in
	// time. The stack's main (cmd/function) injects it; production never reads it.
	ClockFile string
	// MaximumBackoff, when set, caps the redelivery backoff below the
	// topology's (a test that waits for convergence need not wait 60 s).
	MaximumBackoff time.Duration
}

// Stack is a running local system.
type Stack struct {
	Project    string
	Emulators  *emulator.Emulators
	URLs       map[string]string // function -> base URL
	GitLab     *testdouble.GitLab
	Salesforce *testdouble.Salesforce
	Slack      *testdouble.Slack
	PagerDuty  *testdouble.PagerDuty
	Stripe     *testdouble.StripeProxy
	// OIDC signs the checkout function's callers' ID tokens (checkout.go).
	OIDC   *oidcissuer.Issuer
	Store  *store.Store
	PubSub *pubsub.Client
	// Traces receives every function's spans over OTLP/HTTP.
	Traces *tracing.Receiver
	// Mailpit is the real mail server notifications sends to; its web UI
	// (Mailpit.UIURL) shows every e-mail.
	Mailpit *mailpit.Mailpit

	ownEmulators bool
	delivery     topology.Delivery
	hopRuns      atomic.Int64
	closers      []func() error
	functions    map[string]*supervised
	backends     map[string]string // function -> its process's own URL, past the front door
	redeliverers []*redeliverer
	waits        pushWaits // what the emulator's push loops added (pushwait.go)
	stopping     atomic.Bool
	supervisors  sync.WaitGroup
}

// supervised is a function process the stack restarts whenever it exits,
// as Cloud Run starts a new instance after a crash.
type supervised struct {
	mu       sync.Mutex
	cmd      *exec.Cmd
	restarts int
}

// Start brings the stack up; on error everything started is stopped.
func Start(ctx context.Context, o Options) (s *Stack, err error) {
	if o.Project == "" {
		o.Project = DefaultProject
	}
	if o.Logs == nil {
		o.Logs = io.Discard
	}
	if o.Root == "" {
		if o.Root, err = RepoRoot(); err != nil {
			return nil, err
		}
	}
	s = &Stack{Project: o.Project, URLs: map[string]string{}, functions: map[string]*supervised{}, backends: map[string]string{}}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if err := s.startEmulators(ctx, o); err != nil {
		return s, err
	}
	bin, err := build(ctx, o.Root)
	if err != nil {
		return s, err
	}
	if err := s.startDoubles(ctx, o.Logs); err != nil {
		return s, err
	}
	if err := s.startTraceReceiver(); err != nil {
		return s, err
	}
	for _, fn := range Functions {
		if err := s.startFunction(ctx, fn, bin, o); err != nil {
			return s, err
		}
	}
	if s.Store, err = firestore.OpenStore(ctx, o.Project); err != nil {
		return s, err
	}
	if s.PubSub, err = pubsub.NewClient(ctx, o.Project); err != nil {
		return s, err
	}
	top, err := topology.Load()
	if err != nil {
		return s, err
	}
	if o.MaximumBackoff > 0 {
		top.Delivery.MaximumBackoff = o.MaximumBackoff
	}
	s.delivery = top.Delivery
	endpoints := map[string]string{}
	for _, fn := range top.Subscribers() {
		r := newRedeliverer(fn, s.backends[fn]+"/", top.Delivery, s.PubSub, o.Logs, &s.waits)
		s.redeliverers = append(s.redeliverers, r)
		if err := r.listen(); err != nil {
			return s, err
		}
		endpoints[fn] = r.url
	}
	return s, top.Apply(ctx, s.PubSub.Raw(), endpoints)
}

func (s *Stack) startEmulators(ctx context.Context, o Options) error {
	if e, ok := emulator.FromEnv(); ok {
		s.Emulators = e
		return nil
	}
	e, err := emulator.Start(ctx, o.Logs)
	if err != nil {
		return err
	}
	s.Emulators, s.ownEmulators = e, true
	e.Export()
	return nil
}

func (s *Stack) startDoubles(ctx context.Context, logs io.Writer) (err error) {
	if s.GitLab, err = testdouble.StartGitLab("127.0.0.1:0", []byte(GitLabJWTKey)); err != nil {
		return err
	}
	s.closers = append(s.closers, s.GitLab.Close)
	if s.Salesforce, err = testdouble.StartSalesforce("127.0.0.1:0", SalesforceToken); err != nil {
		return err
	}
	s.closers = append(s.closers, s.Salesforce.Close)
	if s.Slack, err = testdouble.StartSlack("127.0.0.1:0"); err != nil {
		return err
	}
	s.closers = append(s.closers, s.Slack.Close)
	if s.PagerDuty, err = testdouble.StartPagerDuty("127.0.0.1:0"); err != nil {
		return err
	}
	s.closers = append(s.closers, s.PagerDuty.Close)
	mockURL, err := s.startStripeMock(ctx, logs)
	if err != nil {
		return err
	}
	if s.Stripe, err = testdouble.StartStripeProxy("127.0.0.1:0", mockURL); err != nil {
		return err
	}
	s.closers = append(s.closers, s.Stripe.Close)
	if err := s.startMailpit(ctx, logs); err != nil {
		return err
	}
	return s.startOIDC()
}

// startMailpit runs Mailpit (bin/mailpit, built by make tools), keeping
// its messages and its own log in a directory of its own for the stack's
// life. Its log stays out of the stack's: a mail server's log names
// addresses, and the stack's log is checked for none (tests/faults).
func (s *Stack) startMailpit(ctx context.Context, _ io.Writer) error {
	dir, err := os.MkdirTemp("", "fulfillment-mailpit-")
	if err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(dir, "mailpit.log"))
	if err != nil {
		return err
	}
	if s.Mailpit, err = mailpit.Start(ctx, dir, log); err != nil {
		log.Close()
		return err
	}
	s.closers = append(s.closers, func() error { s.Mailpit.Stop(); log.Close(); return os.RemoveAll(dir) })
	return nil
}

// startStripeMock runs stripe-mock (installed into bin/ by the Makefile).
func (s *Stack) startStripeMock(ctx context.Context, logs io.Writer) (string, error) {
	m, err := testdouble.StartStripeMock(ctx, logs)
	if err != nil {
		return "", err
	}
	s.closers = append(s.closers, func() error { m.Stop(); return nil })
	return m.URL, nil
}

// startFunction runs fn as a supervised process behind a front door (see
// frontDoor) whose address is the function's URL; its subscriptions' pushes
// go to the process itself (redeliverer).
func (s *Stack) startFunction(ctx context.Context, fn, bin string, o Options) error {
	port, err := emulator.FreePort()
	if err != nil {
		return err
	}
	front := "127.0.0.1:0"
	if fn == "checkout-webhook" && o.WebhookPort != 0 {
		front = fmt.Sprintf("127.0.0.1:%d", o.WebhookPort)
	}
	env := map[string]string{
		"PORT": fmt.Sprint(port), "HOST": "127.0.0.1", "FUNCTION_TARGET": fn,
		"GOOGLE_CLOUD_PROJECT":    o.Project,
		emulator.FirestoreHostEnv: s.Emulators.FirestoreHost,
		emulator.PubSubHostEnv:    s.Emulators.PubSubHost,
		"DEAD_LETTER_TOPIC":       topology.DeadLetterTopic(fn),
		"STRIPE_WEBHOOK_SECRETS":  WebhookSecret,
		"GITLAB_URL":              s.GitLab.URL(),
		"GITLAB_JWT_KEY":          GitLabJWTKey,
		"LICENSE_SIGNING_KEY":     LicenseSeed,
		"ACTIVATION_CODE_PEPPER":  ActivationCodePepper,
		"SALESFORCE_INSTANCE_URL": s.Salesforce.URL(),
		"SALESFORCE_ACCESS_TOKEN": SalesforceToken,
		"SLACK_WEBHOOK_URL":       s.Slack.URL() + SlackWebhookPath,
		"PAGERDUTY_EVENTS_URL":    s.PagerDuty.URL(),
		"PAGERDUTY_ROUTING_KEY":   PagerDutyKey,
		"STRIPE_API_KEY":          StripeAPIKey,
		"STRIPE_API_URL":          s.Stripe.URL(),
		"SEAT_USAGE_TOKEN_KEY":    SeatUsageTokenKey,
		"LOG_LEVEL":               "info",
		"SMTP_HOST":               "127.0.0.1",
		"SMTP_PORT":               fmt.Sprint(s.Mailpit.SMTPPort),
		"SMTP_STARTTLS":           "none",
		"SMTP_USERNAME":           SMTPUsername,
		"SMTP_PASSWORD":           SMTPPassword,
		"NOTIFY_PREFERENCES_KEY":  NoticePreferencesKey,
		"GITLAB_ADMIN_TOKEN":      testdouble.GitLabAdminToken,
	}
	for k, v := range runtimeenv.Vars() { // as the base image sets them
		env[k] = v
	}
	for k, v := range s.telemetryEnv() {
		env[k] = v
	}
	for k, v := range s.checkoutEnv() {
		env[k] = v
	}
	if o.ClockFile != "" {
		env[clock.FileEnv] = o.ClockFile
	}
	for _, scope := range []string{"*", fn} {
		for k, v := range o.Env[scope] {
			env[k] = v
		}
	}
	sup := &supervised{}
	s.functions[fn] = sup
	started := make(chan error, 1)
	s.supervisors.Add(1)
	go s.supervise(fn, sup, bin, env, o.Logs, started)
	if err := <-started; err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := localproc.WaitListening(ctx, addr, 30*time.Second); err != nil {
		return err
	}
	door, err := startFrontDoor(front, addr, o.Logs)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, door.Close)
	s.URLs[fn] = door.URL()
	s.backends[fn] = "http://" + addr
	return nil
}

// startTraceReceiver runs the OTLP/HTTP receiver the functions export
// their spans to, so a purchase's trace can be read back (fulfillctl trace).
func (s *Stack) startTraceReceiver() (err error) {
	if s.Traces, err = tracing.StartReceiver("127.0.0.1:0"); err != nil {
		return err
	}
	s.closers = append(s.closers, s.Traces.Close)
	return nil
}

// telemetryEnv points every function's trace exporter at the receiver,
// exporting a span batch within 100 ms instead of 5 s, so traces show at once.
func (s *Stack) telemetryEnv() map[string]string {
	return map[string]string{
		"OTEL_TRACES_EXPORTER":               "otlp",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": s.Traces.URL() + tracing.ExportPath,
		"OTEL_BSP_SCHEDULE_DELAY":            "100",
		"OTEL_METRICS_EXPORTER":              "none",
	}
}

// supervise runs a function process and starts it again each time it exits,
// until the stack stops. The first start's outcome goes to started.
func (s *Stack) supervise(fn string, sup *supervised, bin string, env map[string]string, logs io.Writer, started chan<- error) {
	defer s.supervisors.Done()
	first := true
	for !s.stopping.Load() {
		cmd := localproc.Command(bin, env, logs)
		err := cmd.Start()
		if first {
			started <- err
			first = false
		}
		if err != nil {
			if s.stopping.Load() {
				return
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		sup.mu.Lock()
		sup.cmd = cmd
		sup.mu.Unlock()
		err = cmd.Wait()
		if s.stopping.Load() {
			return
		}
		sup.mu.Lock()
		sup.cmd = nil // exited: a Kill before the next start has nothing to end
		sup.restarts++
		sup.mu.Unlock()
		fmt.Fprintf(logs, "localstack: %s exited (%v); restarting\n", fn, err)
	}
}

// Kill ends a function's process at once (SIGKILL, mid-flight); the stack
// starts it again, on the same port.
func (s *Stack) Kill(fn string) error {
	sup, ok := s.functions[fn]
	if !ok {
		return fmt.Errorf("localstack: no function %q", fn)
	}
	sup.mu.Lock()
	defer sup.mu.Unlock()
	err := localproc.Signal(sup.cmd, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		// It exited on its own (a crash point) a moment ago and the
		// supervisor is starting it again: it is down, as asked.
		return nil
	}
	return err
}

// Restarts counts how often a function's process exited and was started
// again (crash points and Kill alike).
func (s *Stack) Restarts(fn string) int {
	sup, ok := s.functions[fn]
	if !ok {
		return 0
	}
	sup.mu.Lock()
	defer sup.mu.Unlock()
	return sup.restarts
}

// Pids are the process ids of every running function, for measuring their
// CPU and memory (the benchmark does).
func (s *Stack) Pids() map[string]int {
	out := map[string]int{}
	for fn, sup := range s.functions {
		sup.mu.Lock()
		if sup.cmd != nil && sup.cmd.Process != nil {
			out[fn] = sup.cmd.Process.Pid
		}
		sup.mu.Unlock()
	}
	return out
}

// Stop ends every process and server the stack started.
func (s *Stack) Stop() {
	for _, r := range s.redeliverers {
		_ = r.Close()
	}
	s.redeliverers = nil
	s.stopping.Store(true)
	for _, sup := range s.functions {
		sup.mu.Lock()
		_ = localproc.Signal(sup.cmd, syscall.SIGTERM)
		sup.mu.Unlock()
	}
	done := make(chan struct{})
	go func() { s.supervisors.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		for _, sup := range s.functions {
			sup.mu.Lock()
			_ = localproc.Signal(sup.cmd, syscall.SIGKILL)
			sup.mu.Unlock()
		}
		<-done
	}
	if s.PubSub != nil {
		_ = s.PubSub.Close()
	}
	if s.Store != nil {
		_ = s.Store.Close()
	}
	for _, c := range s.closers {
		_ = c()
	}
	s.closers = nil
	if s.ownEmulators {
		s.Emulators.Stop()
	}
}

// mainPackage is the stack's entry point for every function: each function's
// Setup and GCP entry point, plus the test hooks it reads from
// FULFILLMENT_CLOCK_FILE and FAULT_CRASH, which production mains never read.
const mainPackage = "./infra/localstack/cmd/function"

// build compiles the stack's function main (one binary; FUNCTION_TARGET
// picks the function) into bin/; repeated builds are quick.
func build(ctx context.Context, root string) (string, error) {
	out := filepath.Join(root, "bin", "functions", "localstack-function")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, mainPackage)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("localstack: build %s: %w\n%s", mainPackage, err, b)
	}
	return out, nil
}

// RepoRoot finds the module root from the working directory.
func RepoRoot() (string, error) { return localproc.ModuleRoot() }
