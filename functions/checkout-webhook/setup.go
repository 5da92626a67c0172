package checkoutwebhook

import (
	"context"
	"log/slog"

	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/entrypoint"
	"fulfillment/shared/runtime/platform"
)

// Name is the function's name in logs, FUNCTION_TARGET and deployments.
const Name = "checkout-webhook"

// Setup builds the webhook from the environment: STRIPE_WEBHOOK_SECRETS
// (comma-separated, required), GOOGLE_CLOUD_PROJECT, DEAD_LETTER_TOPIC.
func Setup(ctx context.Context, logger *slog.Logger) (entrypoint.Function, error) {
	env := &config.Env{}
	secrets := env.List("STRIPE_WEBHOOK_SECRETS")
	if len(secrets) == 0 {
		env.Required("STRIPE_WEBHOOK_SECRETS")
	}
	if err := env.Err(); err != nil {
		return nil, err
	}
	p, err := platform.Open(ctx)
	if err != nil {
		return nil, err
	}
	return New(Deps{
		Store: p.Store, Publisher: p.Publisher, Secrets: secrets, Logger: logger, Close: p.Close,
	}), nil
}
