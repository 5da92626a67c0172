package faults

import (
	"regexp"
	"strings"
	"testing"

	"fulfillment/infra/localstack"
	"fulfillment/shared/testsupport/testdouble"
)

// The whole run above (hundreds of orders, every error path the faults
// provoke) was logged by every function into one buffer. No configured
// secret, signing key, bearer token or customer e-mail may appear in it.
func TestLogsHoldNoSecretsOrEmails(t *testing.T) {
	all := logs.String()
	if n := strings.Count(all, `"webhook accepted"`); n < 100 {
		t.Fatalf("only %d accepted webhooks logged: the flow did not run", n)
	}
	if !strings.Contains(all, `"severity":"ERROR"`) {
		t.Fatal("no error was logged: the error paths, where leaks happen, did not run")
	}
	secrets := map[string]string{
		"Stripe webhook secret":   localstack.WebhookSecret,
		"GitLab JWT signing key":  localstack.GitLabJWTKey,
		"Salesforce access token": localstack.SalesforceToken,
		"PagerDuty routing key":   localstack.PagerDutyKey,
		"Stripe API key":          localstack.StripeAPIKey,
		"license signing seed":    localstack.LicenseSeed,
		"Slack webhook URL":       localstack.SlackWebhookPath,
		"seat-usage token key":    localstack.SeatUsageTokenKey,
		"SMTP password":           localstack.SMTPPassword,
		"notice preferences key":  localstack.NoticePreferencesKey,
		"GitLab admin token":      testdouble.GitLabAdminToken,
	}
	patterns := map[string]*regexp.Regexp{
		"bearer token":  regexp.MustCompile(`(?i)bearer\s+[A-Za-z0-9._~+/!-]{8,}`),
		"JWT":           regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.`),
		"e-mail":        regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`),
		"Stripe key":    regexp.MustCompile(`\b(sk|rk)_(test|live)_[A-Za-z0-9]+`),
		"Slack webhook": regexp.MustCompile(`/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]+`),
	}
	lines := strings.Split(all, "\n")
	leaks := 0
	for i, line := range lines {
		for what, secret := range secrets {
			if strings.Contains(line, secret) {
				leaks++
				t.Errorf("line %d leaks the %s: %.200s", i+1, what, line)
			}
		}
		for what, re := range patterns {
			if m := re.FindString(line); m != "" {
				leaks++
				t.Errorf("line %d leaks a %s (%q): %.200s", i+1, what, m, line)
			}
		}
		if leaks > 20 {
			t.Fatal("too many leaks; stopping")
		}
	}
	t.Logf("%d log lines checked", len(lines))
}
