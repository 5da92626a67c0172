package renewal

import (
	"context"
	"log/slog"
	"time"

	"fulfillment/shared/config"
	"fulfillment/shared/entrypoint"
	"fulfillment/shared/platform"
	"fulfillment/shared/stripe"
)

// Setup builds renewal from the environment: STRIPE_API_KEY (required),
// STRIPE_API_URL (stripe-mock locally; empty for Stripe) and
// RENEWAL_LEAD_TIME (default 168h: charge a week before term end).
func Setup(ctx context.Context, logger *slog.Logger) (entrypoint.Function, error) {
	env := &config.Env{}
	key := env.Required("STRIPE_API_KEY")
	apiURL := env.String("STRIPE_API_URL", "")
	lead := env.Duration("RENEWAL_LEAD_TIME", 7*24*time.Hour)
	if err := env.Err(); err != nil {
		return nil, err
	}
	p, err := platform.Open(ctx)
	if err != nil {
		return nil, err
	}
	f := New(Deps{
		Store: p.Store, Publisher: p.Publisher, DeadLetterTopic: p.DeadLetterTopic, Logger: logger, Close: p.Close,
		Billing: stripe.NewBilling(key, apiURL), LeadTime: lead,
	})
	return entrypoint.Serve(f, logger), nil
}
