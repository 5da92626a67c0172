package renewal

import (
	"context"
	"errors"
	"time"

	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/platform"
)

// Config are renewal's settings.
type Config struct {
	config.Common
	// StripeAPIKey is the Stripe secret key charges are made with.
	StripeAPIKey string `env:"STRIPE_API_KEY,required,notEmpty"`
	// StripeAPIURL is stripe-mock locally; empty for Stripe itself.
	StripeAPIURL string `env:"STRIPE_API_URL"`
	// StripeTimeout bounds one call to Stripe.
	StripeTimeout time.Duration `env:"STRIPE_TIMEOUT" envDefault:"30s"`
	// PageSize is how many subscriptions one fan-out query page reads.
	PageSize int `env:"RENEWAL_PAGE_SIZE" envDefault:"500"`
	// Schedule is the subscription schedule.
	Schedule PolicyConfig
}

// Validate refuses a schedule that cannot run.
func (c *Config) Validate() error { return c.Schedule.Policy().Validate() }

// PolicyConfig is the subscription schedule as operators set it; its
// defaults are subscription.DefaultPolicy's.
type PolicyConfig struct {
	// NoticeDays is how many days before term end the renewal notice goes out.
	NoticeDays int `env:"RENEWAL_NOTICE_DAYS" envDefault:"15"`
	// ChargeLead is how long before term end the renewal is charged.
	ChargeLead time.Duration `env:"RENEWAL_LEAD_TIME" envDefault:"168h"`
	// RetryDays are the payment retries, in days after the first failure.
	RetryDays config.Ints `env:"DUNNING_RETRY_DAYS" envDefault:"3,7,14"`
	// GraceDays is the grace period after the last retry.
	GraceDays int `env:"DUNNING_GRACE_DAYS" envDefault:"7"`
	// SuspensionDays is how long a subscription stays suspended before it is
	// canceled.
	SuspensionDays int `env:"DUNNING_SUSPENSION_DAYS" envDefault:"30"`
	// TrueUpDelayDays is how many days after its notice the quarterly true-up
	// is invoiced.
	TrueUpDelayDays int `env:"TRUE_UP_DELAY_DAYS" envDefault:"7"`
	// SettleAfter is when an unanswered charge is checked with Stripe.
	SettleAfter time.Duration `env:"CHARGE_SETTLE_AFTER" envDefault:"1h"`
}

// Policy is the schedule c describes.
func (c PolicyConfig) Policy() subscription.Policy {
	p := subscription.DefaultPolicy()
	p.NoticeLead = time.Duration(c.NoticeDays) * 24 * time.Hour
	p.ChargeLead = c.ChargeLead
	if len(c.RetryDays) > 0 { // a list of separators alone keeps the default
		p.RetryDays = c.RetryDays
	}
	p.GraceDays = c.GraceDays
	p.SuspensionDays = c.SuspensionDays
	p.TrueUpDelay = time.Duration(c.TrueUpDelayDays) * 24 * time.Hour
	p.SettleAfter = c.SettleAfter
	return p
}

// Setup builds renewal from the environment (Config).
var Setup = platform.SetupEvents(func(_ context.Context, w platform.Wiring[Config]) (*Function, error) {
	fanOut := w.Publisher.Batched()
	return New(Deps{
		Store: w.Store, Publisher: w.Publisher, FanOut: fanOut, DeadLetterTopic: w.DeadLetterTopic, Logger: w.Logger,
		Close:   func() error { return errors.Join(fanOut.Close(), w.Close()) },
		Billing: stripe.NewBilling(w.Config.StripeAPIKey, w.Config.StripeAPIURL, w.Config.StripeTimeout),
		Policy:  w.Config.Schedule.Policy(), Clock: w.Clock, PageSize: w.Config.PageSize,
	}), nil
})
