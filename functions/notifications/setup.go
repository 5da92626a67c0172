package notifications

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"fulfillment/shared/adapters/gitlab"
	"fulfillment/shared/adapters/mail"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/entrypoint"
	"fulfillment/shared/runtime/platform"
)

// Config are notifications' settings.
type Config struct {
	config.Common
	// SMTP server the e-mails are sent through.
	SMTPHost string `env:"SMTP_HOST,required,notEmpty"`
	SMTPPort int    `env:"SMTP_PORT" envDefault:"587"`
	// SMTPUsername and SMTPPassword authenticate (AUTH PLAIN) when set; the
	// password is a secret (Secret Manager on GCP).
	SMTPUsername string `env:"SMTP_USERNAME"`
	SMTPPassword string `env:"SMTP_PASSWORD"`
	// SMTPStartTLS is mandatory, opportunistic or none (a local Mailpit).
	SMTPStartTLS string `env:"SMTP_STARTTLS" envDefault:"mandatory"`
	// From is the sender of every e-mail.
	From     string `env:"NOTIFY_FROM" envDefault:"billing@fulfillment.example"`
	FromName string `env:"NOTIFY_FROM_NAME" envDefault:"GitLab Billing"`
	// PortalURL is the customer portal the e-mails link to.
	PortalURL string `env:"NOTIFY_PORTAL_URL" envDefault:"https://customers.gitlab.com"`
	// MessageIDDomain is the right-hand side of every Message-ID.
	MessageIDDomain string `env:"NOTIFY_MESSAGE_ID_DOMAIN" envDefault:"notifications.customers.gitlab.com"`
	// PreferencesKey (a secret) signs the opt-out links of non-essential
	// e-mails; UnsubscribeURL is where they point (default: the portal's
	// UnsubscribePath, which forwards to this function's). Without a key
	// no link is sent.
	PreferencesKey string `env:"NOTIFY_PREFERENCES_KEY"`
	UnsubscribeURL string `env:"NOTIFY_UNSUBSCRIBE_URL"`
	// GitLabURL and GitLabAdminToken (an admin personal access token) send
	// in-app notices; without a token none are sent.
	GitLabURL        string `env:"GITLAB_URL"`
	GitLabAdminToken string `env:"GITLAB_ADMIN_TOKEN"`
	// The schedule the notices describe: the same settings renewal runs on.
	ChargeLead      time.Duration `env:"RENEWAL_LEAD_TIME" envDefault:"168h"`
	RetryDays       config.Ints   `env:"DUNNING_RETRY_DAYS" envDefault:"3,7,14"`
	GraceDays       int           `env:"DUNNING_GRACE_DAYS" envDefault:"7"`
	SuspensionDays  int           `env:"DUNNING_SUSPENSION_DAYS" envDefault:"30"`
	TrueUpDelayDays int           `env:"TRUE_UP_DELAY_DAYS" envDefault:"7"`
}

// Validate refuses a schedule that cannot run.
func (c *Config) Validate() error { return c.policy().Validate() }

func (c *Config) policy() subscription.Policy {
	p := subscription.DefaultPolicy()
	p.ChargeLead = c.ChargeLead
	if len(c.RetryDays) > 0 {
		p.RetryDays = c.RetryDays
	}
	p.GraceDays, p.SuspensionDays = c.GraceDays, c.SuspensionDays
	p.TrueUpDelay = time.Duration(c.TrueUpDelayDays) * 24 * time.Hour
	return p
}

// Setup builds notifications from the environment (Config): its events at
// every path but UnsubscribePath, where customers' opt-out links land.
func Setup(ctx context.Context, logger *slog.Logger, hooks entrypoint.Hooks) (entrypoint.Function, error) {
	// The events' entry point is built around the function; the opt-out
	// route needs the function itself, so build hands it out here.
	var built *Function
	events, err := platform.SetupEvents(func(ctx context.Context, w platform.Wiring[Config]) (*Function, error) {
		f, err := build(ctx, w)
		built = f
		return f, err
	})(ctx, logger, hooks)
	if err != nil {
		return nil, err
	}
	return routed{Function: events, unsubscribe: http.HandlerFunc(built.ServeUnsubscribe)}, nil
}

// routed serves UnsubscribePath apart from the events.
type routed struct {
	entrypoint.Function
	unsubscribe http.Handler
}

func (r routed) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == UnsubscribePath {
		r.unsubscribe.ServeHTTP(w, req)
		return
	}
	r.Function.ServeHTTP(w, req)
}

func build(_ context.Context, w platform.Wiring[Config]) (*Function, error) {
	c := w.Config
	sender, err := mail.New(mail.Config{Host: c.SMTPHost, Port: c.SMTPPort, Username: c.SMTPUsername, Password: c.SMTPPassword,
		StartTLS: c.SMTPStartTLS, From: c.From, FromName: c.FromName})
	if err != nil {
		return nil, err
	}
	var inApp InApp
	if c.GitLabURL != "" && c.GitLabAdminToken != "" {
		inApp = gitlab.NewNotices(c.GitLabURL, c.GitLabAdminToken, platform.OutboundClient("gitlab", w.Logger))
	}
	return New(Deps{
		Store: w.Store, Publisher: w.Publisher, DeadLetterTopic: w.DeadLetterTopic, Logger: w.Logger,
		Close:  func() error { return errors.Join(sender.Close(), w.Close()) }, // the kept SMTP connections too
		Mailer: sender, InApp: inApp, Clock: w.Clock, Policy: c.policy(), PortalURL: c.PortalURL, MessageIDDomain: c.MessageIDDomain,
		PreferencesKey: []byte(c.PreferencesKey), UnsubscribeURL: cmp.Or(c.UnsubscribeURL, c.PortalURL+UnsubscribePath),
	}), nil
}
