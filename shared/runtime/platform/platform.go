// Package platform opens the GCP clients every function shares: Firestore
// and Pub/Sub for GOOGLE_CLOUD_PROJECT (the emulators when their *_EMULATOR_HOST
// variables are set).
package platform

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/httpx"
	"fulfillment/shared/runtime/telemetry"
)

// Platform holds the shared clients and settings.
type Platform struct {
	Store           *store.Store
	Publisher       *pubsub.Client
	DeadLetterTopic string
}

// Open connects both clients.
func Open(ctx context.Context) (*Platform, error) {
	env := &config.Env{}
	common := env.ReadCommon()
	if err := env.Err(); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, common.Project)
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

// OutboundClient is the HTTP client for one outside dependency (GitLab,
// Salesforce, Slack, PagerDuty): timeouts, retries with jittered backoff,
// Retry-After and a circuit breaker of its own (httpx), each attempt traced
// with the caller's trace context (telemetry).
func OutboundClient(dependency string, logger *slog.Logger) *http.Client {
	// Wrap, not Base: httpx's own transport carries the per-attempt timeout,
	// so a hung attempt is cut and retried rather than eating the call timeout.
	return httpx.NewClient(httpx.Options{Name: dependency, Logger: logger, Wrap: telemetry.Transport})
}
