package renewal

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/domain/clock"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/entrypoint"
	"fulfillment/shared/runtime/platform"
)

// Setup builds renewal from the environment: STRIPE_API_KEY (required),
// STRIPE_API_URL (stripe-mock locally; empty for Stripe), STRIPE_TIMEOUT
// (30s), RENEWAL_PAGE_SIZE (500), and the schedule (PolicyFromEnv).
func Setup(ctx context.Context, logger *slog.Logger) (entrypoint.Function, error) {
	env := &config.Env{}
	key := env.Required("STRIPE_API_KEY")
	apiURL := env.String("STRIPE_API_URL", "")
	timeout := env.Duration("STRIPE_TIMEOUT", 30*time.Second)
	pageSize := env.Int("RENEWAL_PAGE_SIZE", 500)
	policy := PolicyFromEnv(env)
	if err := env.Err(); err != nil {
		return nil, err
	}
	if err := policy.Validate(); err != nil {
		return nil, err
	}
	p, err := platform.Open(ctx)
	if err != nil {
		return nil, err
	}
	clk := clock.FromEnv()
	if _, fake := clk.(*clock.File); fake {
		logger.WarnContext(ctx, "time is read from "+clock.FileEnv+": test stacks only")
	}
	fanOut := p.Publisher.Batched()
	f := New(Deps{
		Store: p.Store, Publisher: p.Publisher, FanOut: fanOut, DeadLetterTopic: p.DeadLetterTopic, Logger: logger,
		Close:   func() error { return errors.Join(fanOut.Close(), p.Close()) },
		Billing: stripe.NewBilling(key, apiURL, timeout), Policy: policy, Clock: clk, PageSize: pageSize,
	})
	return entrypoint.Serve(f, logger), nil
}

// PolicyFromEnv reads the subscription schedule; defaults are
// subscription.DefaultPolicy: RENEWAL_NOTICE_DAYS (15), RENEWAL_LEAD_TIME
// (168h: charge a week before term end), DUNNING_RETRY_DAYS ("3,7,14": days
// after the first failure), DUNNING_GRACE_DAYS (7), DUNNING_SUSPENSION_DAYS
// (30: suspended this long before canceled), TRUE_UP_DELAY_DAYS (7) and
// CHARGE_SETTLE_AFTER (1h: when an unanswered charge is checked with Stripe).
func PolicyFromEnv(env *config.Env) subscription.Policy {
	p := subscription.DefaultPolicy()
	p.NoticeLead = time.Duration(env.Int("RENEWAL_NOTICE_DAYS", 15)) * 24 * time.Hour
	p.ChargeLead = env.Duration("RENEWAL_LEAD_TIME", p.ChargeLead)
	p.RetryDays = env.Ints("DUNNING_RETRY_DAYS", p.RetryDays)
	p.GraceDays = env.Int("DUNNING_GRACE_DAYS", p.GraceDays)
	p.SuspensionDays = env.Int("DUNNING_SUSPENSION_DAYS", p.SuspensionDays)
	p.TrueUpDelay = time.Duration(env.Int("TRUE_UP_DELAY_DAYS", 7)) * 24 * time.Hour
	p.SettleAfter = env.Duration("CHARGE_SETTLE_AFTER", p.SettleAfter)
	return p
}
