package failedpaymentalerting

import (
	"context"
	"errors"
	"time"

	"fulfillment/shared/adapters/alerting"
	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/platform"
)

// Config are the function's settings.
type Config struct {
	config.Common
	// SlackURL is the Slack incoming webhook alerts are posted to.
	SlackURL string `env:"SLACK_WEBHOOK_URL,required,notEmpty"`
	// RoutingKey is the PagerDuty Events API v2 integration key.
	RoutingKey string `env:"PAGERDUTY_ROUTING_KEY,required,notEmpty"`
	// EventsURL is PagerDuty's Events API (alerting.DefaultEventsURL).
	EventsURL string `env:"PAGERDUTY_EVENTS_URL" envDefault:"https://events.pagerduty.com"`
	// Threshold is how many payment failures within Window page someone.
	Threshold int `env:"ALERT_THRESHOLD" envDefault:"5"`
	// Window is the sliding window failures are counted over.
	Window time.Duration `env:"ALERT_WINDOW" envDefault:"10m"`
}

// Validate refuses a threshold or window that could never page.
func (c *Config) Validate() error {
	if c.Threshold < 1 || c.Window <= 0 {
		return errors.New("ALERT_THRESHOLD must be >= 1 and ALERT_WINDOW positive")
	}
	return nil
}

// Setup builds the function from the environment (Config).
var Setup = platform.SetupEvents(func(_ context.Context, w platform.Wiring[Config]) (*Function, error) {
	pd := alerting.NewPagerDuty(w.Config.EventsURL, w.Config.RoutingKey, platform.OutboundClient("pagerduty", w.Logger))
	return New(Deps{
		Store: w.Store, Publisher: w.Publisher, DeadLetterTopic: w.DeadLetterTopic, Logger: w.Logger, Close: w.Close,
		Slack: alerting.NewSlack(w.Config.SlackURL, platform.OutboundClient("slack", w.Logger)), PagerDuty: NotifierFunc(pd.Trigger),
		Threshold: w.Config.Threshold, Window: w.Config.Window,
	}), nil
})
