package checkoutwebhook

import (
	"context"
	"errors"

	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/entrypoint"
	"fulfillment/shared/runtime/platform"
)

// Name is the function's name in logs, FUNCTION_TARGET and deployments.
const Name = "checkout-webhook"

// Config are the webhook's settings.
type Config struct {
	config.Common
	// Secrets are Stripe's endpoint signing secrets, comma-separated:
	// several while a secret is rotated.
	Secrets config.List `env:"STRIPE_WEBHOOK_SECRETS,required,notEmpty"`
}

// Validate refuses a list of separators alone.
func (c *Config) Validate() error {
	if len(c.Secrets) == 0 {
		return errors.New("STRIPE_WEBHOOK_SECRETS is required")
	}
	return nil
}

// Setup builds the webhook from the environment (Config).
var Setup = platform.Setup(func(_ context.Context, w platform.Wiring[Config]) (entrypoint.Function, error) {
	return New(Deps{Store: w.Store, Publisher: w.Publisher, Secrets: w.Config.Secrets, Logger: w.Logger, Close: w.Close}), nil
})
