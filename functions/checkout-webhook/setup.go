package checkoutwebhook

import (
	"context"
	"errors"
	"fmt"

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
	// Livemode is the Stripe mode the secrets belong to, "live" or "test":
	// events from the other mode are refused, so a test-mode secret
	// configured in production cannot activate subscriptions. Production
	// sets live; the default suits the local stack and staging.
	Livemode string `env:"STRIPE_LIVEMODE" envDefault:"test"`
}

// Validate refuses a list of separators alone and an unknown mode.
func (c *Config) Validate() error {
	if len(c.Secrets) == 0 {
		return errors.New("STRIPE_WEBHOOK_SECRETS is required")
	}
	if c.Livemode != "live" && c.Livemode != "test" {
		return fmt.Errorf("STRIPE_LIVEMODE is %q, want live or test", c.Livemode)
	}
	return nil
}

// Live reports whether the webhook takes live-mode events.
func (c Config) Live() bool { return c.Livemode == "live" }

// Setup builds the webhook from the environment (Config).
var Setup = platform.Setup(func(_ context.Context, w platform.Wiring[Config]) (entrypoint.Function, error) {
	return New(Deps{Store: w.Store, Publisher: w.Publisher, Secrets: w.Config.Secrets, Live: w.Config.Live(), Logger: w.Logger, Close: w.Close}), nil
})
