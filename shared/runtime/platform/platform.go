// Package platform opens the GCP clients every function shares: Firestore
// (the FIRESTORE_DATABASE database) and Pub/Sub for GOOGLE_CLOUD_PROJECT (the
// emulators when their *_EMULATOR_HOST variables are set), and wires a function once (Setup, SetupEvents): read
// its settings, open the platform, hand both to its constructor.
package platform

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"fulfillment/shared/adapters/firestore"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/clock"
	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/entrypoint"
	"fulfillment/shared/runtime/httpx"
	"fulfillment/shared/runtime/telemetry"
)

// Platform holds the shared clients and settings.
type Platform struct {
	Store           *store.Store
	Publisher       *pubsub.Client
	DeadLetterTopic string
}

// Open connects both clients: Firestore on common.Database (FIRESTORE_DATABASE).
func Open(ctx context.Context, common config.Common) (*Platform, error) {
	st, err := firestore.OpenStoreIn(ctx, common.Project, common.Database)
	if err != nil {
		return nil, err
	}
	pub, err := pubsub.NewClient(ctx, common.Project)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &Platform{Store: st, Publisher: pub, DeadLetterTopic: common.DeadLetterTopic}, nil
}

// Close closes both clients, flushing the publisher first.
func (p *Platform) Close() error {
	return errors.Join(p.Publisher.Close(), p.Store.Close())
}

// Wiring is what a function's constructor is handed: its settings, the
// shared clients, the logger and the clock.
type Wiring[C config.Settings] struct {
	Config C
	// Platform gives Store, Publisher, DeadLetterTopic and Close.
	*Platform
	Logger *slog.Logger
	// Clock is the system clock unless a test stack injected one.
	Clock clock.Clock
}

// Build makes a function from its wiring.
type Build[C config.Settings, F any] func(ctx context.Context, w Wiring[C]) (F, error)

// Setup is the entry points' Setup for an HTTP function whose settings are C.
func Setup[C config.Settings](build Build[C, entrypoint.Function]) entrypoint.Setup {
	return func(ctx context.Context, logger *slog.Logger, hooks entrypoint.Hooks) (entrypoint.Function, error) {
		return wire(ctx, logger, hooks, build)
	}
}

// SetupEvents is the entry points' Setup for a CloudEvents function whose
// settings are C: its Handle is served by entrypoint.Serve.
func SetupEvents[C config.Settings, F entrypoint.EventFunction](build Build[C, F]) entrypoint.Setup {
	return func(ctx context.Context, logger *slog.Logger, hooks entrypoint.Hooks) (entrypoint.Function, error) {
		f, err := wire(ctx, logger, hooks, build)
		if err != nil {
			return nil, err
		}
		return entrypoint.Serve(f, logger), nil
	}
}

// wire reads C from the environment (config.Read), opens the platform for
// C's project and calls build; a failed build closes the platform again.
func wire[C config.Settings, F any](ctx context.Context, logger *slog.Logger, hooks entrypoint.Hooks, build Build[C, F]) (F, error) {
	var none F
	cfg, err := config.Read[C]()
	if err != nil {
		return none, err
	}
	p, err := Open(ctx, cfg.CommonSettings())
	if err != nil {
		return none, err
	}
	f, err := build(ctx, Wiring[C]{Config: cfg, Platform: p, Logger: logger, Clock: hooks.ClockOrSystem()})
	if err != nil {
		return none, errors.Join(err, p.Close())
	}
	return f, nil
}

// OutboundClient is the HTTP client for one outside dependency (GitLab,
// Salesforce, Slack, PagerDuty): timeouts, retries with jittered backoff,
// Retry-After and a circuit breaker of its own (httpx), each attempt traced
// with the caller's trace context (telemetry).
func OutboundClient(dependency string, logger *slog.Logger) *http.Client {
	// Wrap, not Base: httpx's own transport carries the per-attempt timeout,
	// so a hung attempt is cut and retried rather than eating the call timeout.
	return httpx.NewClient(httpx.Options{Name: dependency, Logger: logger, Wrap: telemetry.Transport})
}
