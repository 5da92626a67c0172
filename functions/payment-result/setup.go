package paymentresult

import (
	"context"
	"log/slog"

	"fulfillment/shared/runtime/entrypoint"
	"fulfillment/shared/runtime/platform"
)

// Setup builds payment-result from the environment (GOOGLE_CLOUD_PROJECT, DEAD_LETTER_TOPIC).
func Setup(ctx context.Context, logger *slog.Logger) (entrypoint.Function, error) {
	p, err := platform.Open(ctx)
	if err != nil {
		return nil, err
	}
	f := New(Deps{Store: p.Store, Publisher: p.Publisher, DeadLetterTopic: p.DeadLetterTopic, Logger: logger, Close: p.Close})
	return entrypoint.Serve(f, logger), nil
}
