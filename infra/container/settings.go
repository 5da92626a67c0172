package container

import (
	"os"

	"fulfillment/infra/localstack"
	"fulfillment/infra/topology"
	"fulfillment/shared/testsupport/emulator"
)

// Unreachable is where Settings points the outside systems: nothing listens
// on the discard port, so a call fails at once. No function calls one to
// start or to answer a probe.
const Unreachable = "http://127.0.0.1:9"

// Settings are what any function needs to start in a container: the local
// stack's secrets (infra/localstack), the emulators this process was given
// (FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST, as withemulators exports
// them), or, without them, emulator addresses nothing answers (the clients
// connect lazily, so a function starts and answers probes all the same),
// and the production settings terraform sets (FUNCTION_TARGET, the
// dead-letter topic, telemetry export off). A function that needs a new
// setting to start adds it here.
func Settings(function, project string) map[string]string {
	env := map[string]string{
		"GOOGLE_CLOUD_PROJECT":    project,
		"FUNCTION_TARGET":         function,
		"DEAD_LETTER_TOPIC":       topology.DeadLetterTopic(function),
		"LOG_LEVEL":               "info",
		"OTEL_TRACES_EXPORTER":    "none",
		"OTEL_METRICS_EXPORTER":   "none",
		emulator.FirestoreHostEnv: "127.0.0.1:9",
		emulator.PubSubHostEnv:    "127.0.0.1:9",
		"STRIPE_WEBHOOK_SECRETS":  localstack.WebhookSecret,
		"GITLAB_URL":              Unreachable,
		"GITLAB_JWT_KEY":          localstack.GitLabJWTKey,
		"LICENSE_SIGNING_KEY":     localstack.LicenseSeed,
		"ACTIVATION_CODE_PEPPER":  localstack.ActivationCodePepper,
		"SALESFORCE_INSTANCE_URL": Unreachable,
		"SALESFORCE_ACCESS_TOKEN": localstack.SalesforceToken,
		"SLACK_WEBHOOK_URL":       Unreachable + localstack.SlackWebhookPath,
		"PAGERDUTY_EVENTS_URL":    Unreachable,
		"PAGERDUTY_ROUTING_KEY":   localstack.PagerDutyKey,
		"STRIPE_API_KEY":          localstack.StripeAPIKey,
		"STRIPE_API_URL":          Unreachable,
		"SEAT_USAGE_TOKEN_KEY":    localstack.SeatUsageTokenKey,
		// checkout: its callers' issuer (keys fetched lazily, at the first token).
		"OIDC_ISSUER":      Unreachable,
		"OIDC_JWKS_URL":    Unreachable + "/jwks",
		"OIDC_AUDIENCE":    localstack.CheckoutAudience,
		"CHECKOUT_CALLERS": localstack.CheckoutCaller,
		// notifications: the mail server (dialled per message, not at start).
		"SMTP_HOST":          "127.0.0.1",
		"SMTP_PORT":          "9",
		"SMTP_STARTTLS":      "none",
		"SMTP_USERNAME":      localstack.SMTPUsername,
		"SMTP_PASSWORD":      localstack.SMTPPassword,
		"GITLAB_ADMIN_TOKEN": "local-admin-token",
	}
	for _, k := range []string{emulator.FirestoreHostEnv, emulator.PubSubHostEnv} {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	return env
}
