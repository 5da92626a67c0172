package failedpaymentalerting

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"fulfillment/shared/adapters/alerting"
	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/entrypoint"
	"fulfillment/shared/runtime/platform"
)

// Setup builds the function from the environment: SLACK_WEBHOOK_URL,
// PAGERDUTY_ROUTING_KEY (required), PAGERDUTY_EVENTS_URL, ALERT_THRESHOLD
// (default 5 failures) and ALERT_WINDOW (default 10m).
func Setup(ctx context.Context, logger *slog.Logger) (entrypoint.Function, error) {
	env := &config.Env{}
	slackURL := env.Required("SLACK_WEBHOOK_URL")
	routingKey := env.Required("PAGERDUTY_ROUTING_KEY")
	eventsURL := env.String("PAGERDUTY_EVENTS_URL", alerting.DefaultEventsURL)
	threshold := env.Int("ALERT_THRESHOLD", 5)
	window := env.Duration("ALERT_WINDOW", 10*time.Minute)
	if err := env.Err(); err != nil {
		return nil, err
	}
	if threshold < 1 || window <= 0 {
		return nil, fmt.Errorf("config: ALERT_THRESHOLD must be >= 1 and ALERT_WINDOW positive")
	}
	p, err := platform.Open(ctx)
	if err != nil {
		return nil, err
	}
	pd := alerting.NewPagerDuty(eventsURL, routingKey, platform.OutboundClient("pagerduty", logger))
	f := New(Deps{
		Store: p.Store, Publisher: p.Publisher, DeadLetterTopic: p.DeadLetterTopic, Logger: logger, Close: p.Close,
		Slack: alerting.NewSlack(slackURL, platform.OutboundClient("slack", logger)), PagerDuty: NotifierFunc(pd.Trigger),
		Threshold: threshold, Window: window,
	})
	return entrypoint.Serve(f, logger), nil
}
