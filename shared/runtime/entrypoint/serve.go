package entrypoint

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/cloudevents/sdk-go/v2/event"
	fnhttp "knative.dev/func-go/http"

	"fulfillment/shared/domain/clock"
	"fulfillment/shared/runtime/logging"
	"fulfillment/shared/runtime/telemetry"
)

// Function is what every function's constructor returns to its entry points.
type Function interface {
	http.Handler
	Close() error
}

// Setup builds a function from the environment, with the hooks a test stack
// injects (none in production).
type Setup func(ctx context.Context, logger *slog.Logger, hooks Hooks) (Function, error)

// Hooks are what only a test stack hands a function: production's mains pass
// none, and nothing in a function reads them from the environment. The zero
// value is production. The local stack's own main (infra/localstack/cmd/function)
// sets them, and enables the crash points (shared/runtime/faultpoint).
type Hooks struct {
	// Clock, when set, replaces the system clock: the local stack's shared
	// clock file, which moves every process through a subscription's year.
	Clock clock.Clock
}

// ClockOrSystem is the injected clock, else the system clock.
func (h Hooks) ClockOrSystem() clock.Clock {
	if h.Clock == nil {
		return clock.System{}
	}
	return h.Clock
}

// RunGCP serves the function with functions-framework-go on PORT (8080),
// registered under name so FUNCTION_TARGET=name selects it, with the
// health paths func-go serves (withHealth). It exits the
// process on failure, after logging why.
func RunGCP(name string, setup Setup) { RunGCPWith(name, setup, Hooks{}) }

// RunGCPWith is RunGCP with test hooks: for the local stack's main only.
func RunGCPWith(name string, setup Setup, hooks Hooks) {
	tuneGC()
	logger := logging.Default(name)
	tuneProcs(logger)
	warnOfMissingGoDebug(logger)
	if err := runGCP(name, setup, hooks, logger); err != nil {
		logger.Error("function stopped", "error", err.Error())
		os.Exit(1)
	}
}

func runGCP(name string, setup Setup, hooks Hooks, logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	shutdown, err := telemetry.Setup(ctx, name, logger)
	if err != nil {
		return err
	}
	defer flushTelemetry(shutdown, logger)
	fn, err := setup(ctx, logger, hooks)
	if err != nil {
		return fmt.Errorf("setup %s: %w", name, err)
	}
	defer fn.Close()
	var requests inFlight
	functions.HTTP(name, withHealth(requests.count(instrument(name, fn))).ServeHTTP)
	if os.Getenv("FUNCTION_TARGET") == "" {
		os.Setenv("FUNCTION_TARGET", name)
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	logger.Info("serving", "runtime", "functions-framework", "port", port)
	errc := make(chan error, 1)
	go func() { errc <- funcframework.StartHostPort(os.Getenv("HOST"), port) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		if n := requests.drain(drainTimeout); n > 0 {
			logger.Warn("stopping with requests in flight", "requests", n)
		}
		return nil
	}
}

// drainTimeout bounds the wait for the requests in flight at SIGTERM: with
// the function's Close and the telemetry flush (5 s at most) the process
// exits within Cloud Run's 10 s.
const drainTimeout = 4 * time.Second

// inFlight counts the requests being served, so that a SIGTERM lets them
// finish before the function closes its clients: functions-framework-go's
// server has no Shutdown to do it.
type inFlight struct{ n atomic.Int64 }

func (f *inFlight) count(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.n.Add(1)
		defer f.n.Add(-1)
		h.ServeHTTP(w, r)
	})
}

// drain waits until no request is in flight, for at most limit, and
// returns how many still are.
func (f *inFlight) drain(limit time.Duration) int64 {
	deadline := time.Now().Add(limit)
	for {
		n := f.n.Load()
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// RunKnative serves the function with knative func-go, which listens on
// LISTEN_ADDRESS (set it to 0.0.0.0:8080 in containers: func-go binds
// 127.0.0.1 when only PORT is set) and serves /health/readiness and liveness.
func RunKnative(name string, setup Setup) {
	tuneGC()
	logger := logging.Default(name)
	tuneProcs(logger)
	warnOfMissingGoDebug(logger)
	if err := fnhttp.Start(&knativeInstance{name: name, setup: setup, logger: logger}); err != nil {
		logger.Error("function stopped", "error", err.Error())
		os.Exit(1)
	}
}

// knativeInstance adapts a Function to func-go's instance hooks. func-go
// serves while Start runs in another goroutine, so the started function is
// published atomically: a request sees all of it or "starting".
type knativeInstance struct {
	name    string
	setup   Setup
	logger  *slog.Logger
	running atomic.Pointer[knativeRunning]
}

// knativeRunning is a started function.
type knativeRunning struct {
	fn       Function
	handler  http.Handler
	shutdown func(context.Context) error
}

func (k *knativeInstance) Start(ctx context.Context, _ map[string]string) error {
	shutdown, err := telemetry.Setup(ctx, k.name, k.logger)
	if err != nil {
		return err
	}
	fn, err := k.setup(ctx, k.logger, Hooks{})
	if err != nil {
		flushTelemetry(shutdown, k.logger)
		return fmt.Errorf("setup %s: %w", k.name, err)
	}
	k.running.Store(&knativeRunning{fn: fn, handler: instrument(k.name, fn), shutdown: shutdown})
	return nil
}

func (k *knativeInstance) Handle(w http.ResponseWriter, r *http.Request) {
	run := k.running.Load()
	if run == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	run.handler.ServeHTTP(w, r)
}

func (k *knativeInstance) Stop(context.Context) error {
	run := k.running.Load()
	if run == nil {
		return nil
	}
	defer flushTelemetry(run.shutdown, k.logger)
	return run.fn.Close()
}

func (k *knativeInstance) Ready(context.Context) (bool, error) { return k.running.Load() != nil, nil }

// Health paths, as knative func-go serves them.
const (
	ReadinessPath = "/health/readiness"
	LivenessPath  = "/health/liveness"
)

// withHealth answers func-go's health paths in front of h, so one probe
// configuration (a Cloud Run startup or liveness probe, a Kubernetes one)
// fits both entry points. functions-framework-go listens only once setup has
// succeeded, so whenever it answers, the function is ready.
func withHealth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case ReadinessPath:
			fmt.Fprint(w, "READY")
		case LivenessPath:
			fmt.Fprint(w, "ALIVE")
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// EventFunction is a CloudEvents function: New(...) plus Handle.
type EventFunction interface {
	Handle(ctx context.Context, e event.Event) error
	Close() error
}

// Serve adapts an EventFunction to the HTTP entry points. A function that
// can record undecodable deliveries (the consumer's DeadLetterUndecodable)
// has them recorded and acknowledged.
func Serve(f EventFunction, logger *slog.Logger) Function {
	var record UndecodableFunc
	if r, ok := f.(interface {
		DeadLetterUndecodable(ctx context.Context, body []byte, cause error) error
	}); ok {
		record = r.DeadLetterUndecodable
	}
	return served{Handler: RecordingHandler(f.Handle, record, logger), EventFunction: f}
}

type served struct {
	http.Handler
	EventFunction
}

func (s served) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.Handler.ServeHTTP(w, r) }
func (s served) Close() error                                     { return s.EventFunction.Close() }

// instrument traces a function's requests. A CloudEvents function starts a
// span per delivery from the event's traceparent (shared/consumer), so its
// requests only pass the caller's trace header on; any other HTTP function
// (the webhook) gets a server span continuing the caller's trace.
func instrument(name string, fn Function) http.Handler {
	if _, ok := fn.(served); ok {
		return telemetry.ContinueTrace(fn)
	}
	return telemetry.Handler(fn, name)
}

// flushTelemetry sends what is buffered, within a bounded time: on Cloud Run
// the instance has 10 s after SIGTERM.
func flushTelemetry(shutdown func(context.Context) error, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		logger.Warn("telemetry not flushed", "error", err.Error())
	}
}
