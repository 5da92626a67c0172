package checkout

import (
	"context"
	"errors"
	"slices"
	"time"

	"fulfillment/shared/adapters/gitlab"
	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/entrypoint"
	"fulfillment/shared/runtime/platform"
)

// Config are the checkout's settings.
type Config struct {
	config.Common
	// StripeAPIKey is the Stripe secret key sessions are created with.
	StripeAPIKey string `env:"STRIPE_API_KEY,required,notEmpty"`
	// StripeAPIURL is stripe-mock locally; empty for Stripe itself.
	StripeAPIURL  string        `env:"STRIPE_API_URL"`
	StripeTimeout time.Duration `env:"STRIPE_TIMEOUT" envDefault:"30s"`
	// StripeTax asks Stripe Tax for automatic tax (automatic_tax[enabled]):
	// tax is added on top of the quote, and the ledger keeps it apart.
	StripeTax bool `env:"CHECKOUT_STRIPE_TAX" envDefault:"false"`
	// QuoteTTL is how long a quote can be paid (Stripe: 30m..24h).
	QuoteTTL time.Duration `env:"CHECKOUT_QUOTE_TTL" envDefault:"1h"`

	// OIDCIssuer and OIDCJWKSURL name who signs callers' ID tokens: Google
	// on GCP, the local issuer (shared/testsupport/oidcissuer) locally.
	OIDCIssuer  string `env:"OIDC_ISSUER" envDefault:"https://accounts.google.com"`
	OIDCJWKSURL string `env:"OIDC_JWKS_URL" envDefault:"https://www.googleapis.com/oauth2/v3/certs"`
	// OIDCAudience is the audience tokens must be for: the function's URL on GCP.
	OIDCAudience string `env:"OIDC_AUDIENCE,required,notEmpty"`
	// Callers are the identities (token e-mail, else subject) allowed to
	// call: GitLab.com's and the web store's service accounts.
	Callers config.List `env:"CHECKOUT_CALLERS,required,notEmpty"`
	// TickCallers run the trial tick (Cloud Scheduler's service account):
	// when set, only they may call POST /trials/tick, and nothing else.
	TickCallers config.List `env:"CHECKOUT_TICK_CALLERS"`

	// GitLabURL and GitLabJWTKey reach GitLab's internal provisioning API for trials.
	GitLabURL    string `env:"GITLAB_URL,required,notEmpty"`
	GitLabJWTKey string `env:"GITLAB_JWT_KEY,required,notEmpty"`
	// Trial policy.
	TrialPlan             string `env:"TRIAL_PLAN" envDefault:"ultimate"`
	TrialDays             int    `env:"TRIAL_DAYS" envDefault:"30"`
	TrialEndingNoticeDays int    `env:"TRIAL_ENDING_NOTICE_DAYS" envDefault:"7"`
}

// Validate refuses settings that cannot work.
func (c *Config) Validate() error {
	if len(c.Callers) == 0 {
		return errors.New("CHECKOUT_CALLERS is required")
	}
	if c.QuoteTTL < 30*time.Minute || c.QuoteTTL > 24*time.Hour {
		return errors.New("CHECKOUT_QUOTE_TTL must be within 30m..24h (Stripe's session expiry)")
	}
	if c.TrialDays < 1 || c.TrialEndingNoticeDays < 0 {
		return errors.New("TRIAL_DAYS must be at least 1 and TRIAL_ENDING_NOTICE_DAYS not negative")
	}
	return nil
}

// Setup builds the checkout from the environment (Config).
var Setup = platform.Setup(func(ctx context.Context, w platform.Wiring[Config]) (entrypoint.Function, error) {
	c := w.Config
	return New(Deps{
		Store: w.Store, Publisher: w.Publisher, Logger: w.Logger, Clock: w.Clock, Close: w.Close,
		Payments:    stripe.NewBilling(c.StripeAPIKey, c.StripeAPIURL, c.StripeTimeout),
		GitLab:      gitlab.NewClient(c.GitLabURL, []byte(c.GitLabJWTKey), platform.OutboundClient("gitlab", w.Logger)),
		Auth:        NewOIDC(ctx, c.OIDCIssuer, c.OIDCJWKSURL, c.OIDCAudience, slices.Concat(c.Callers, c.TickCallers)),
		TickCallers: c.TickCallers,
		QuoteTTL:    c.QuoteTTL,
		StripeTax:   c.StripeTax,
		Trial:       TrialPolicy{PlanCode: c.TrialPlan, Days: c.TrialDays, EndingNoticeDays: c.TrialEndingNoticeDays},
	}), nil
})
