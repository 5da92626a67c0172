package main

import (
	"reflect"
	"testing"
	"time"

	failedpaymentalerting "fulfillment/functions/failed-payment-alerting"
	"fulfillment/functions/renewal"
	"fulfillment/infra/localstack"
	"fulfillment/shared/adapters/alerting"
	"fulfillment/shared/domain/clock"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/faultpoint"
)

func TestServesEveryFunctionOfTheStack(t *testing.T) {
	if len(setups) != len(localstack.Functions) {
		t.Errorf("serves %v, the stack starts %v", names(), localstack.Functions)
	}
	for _, fn := range localstack.Functions {
		if setups[fn] == nil {
			t.Errorf("no Setup for %s", fn)
		}
	}
}

func TestHooksComeFromTheTestVariablesOnly(t *testing.T) {
	t.Setenv(clock.FileEnv, "")
	t.Setenv(faultpoint.EnvVar, "")
	h, err := hooksFromEnv(nil)
	if err != nil || h.Clock != nil {
		t.Fatalf("without the variables: %+v, %v", h, err)
	}
	t.Setenv(faultpoint.EnvVar, "consumer.after-commit:nope")
	if _, err := hooksFromEnv(nil); err == nil {
		t.Error("a bad FAULT_CRASH was accepted")
	}
}

// The defaults in the settings structs' tags are the ones the code had.
func TestSettingsDefaults(t *testing.T) {
	for _, k := range []string{"PAGERDUTY_EVENTS_URL", "ALERT_THRESHOLD", "ALERT_WINDOW", "GOOGLE_CLOUD_PROJECT", "DEAD_LETTER_TOPIC",
		"STRIPE_API_URL", "STRIPE_TIMEOUT", "RENEWAL_PAGE_SIZE", "RENEWAL_NOTICE_DAYS", "RENEWAL_LEAD_TIME", "DUNNING_RETRY_DAYS",
		"DUNNING_GRACE_DAYS", "DUNNING_SUSPENSION_DAYS", "TRUE_UP_DELAY_DAYS", "CHARGE_SETTLE_AFTER"} {
		t.Setenv(k, "")
	}
	for k, v := range map[string]string{"SLACK_WEBHOOK_URL": "https://slack.test", "PAGERDUTY_ROUTING_KEY": "k", "STRIPE_API_KEY": "sk_test"} {
		t.Setenv(k, v)
	}
	a, err := config.Read[failedpaymentalerting.Config]()
	if err != nil {
		t.Fatal(err)
	}
	if a.EventsURL != alerting.DefaultEventsURL || a.Threshold != 5 || a.Window != 10*time.Minute || a.Project != "fulfillment-local" {
		t.Errorf("failed-payment-alerting defaults: %+v", a)
	}
	r, err := config.Read[renewal.Config]()
	if err != nil {
		t.Fatal(err)
	}
	if r.StripeAPIURL != "" || r.StripeTimeout != 30*time.Second || r.PageSize != 500 {
		t.Errorf("renewal defaults: %+v", r)
	}
	if got := r.Schedule.Policy(); !reflect.DeepEqual(got, subscription.DefaultPolicy()) {
		t.Errorf("renewal schedule = %+v, want subscription.DefaultPolicy %+v", got, subscription.DefaultPolicy())
	}
	t.Setenv("DUNNING_RETRY_DAYS", "2,1")
	if _, err := config.Read[renewal.Config](); err == nil {
		t.Error("a decreasing DUNNING_RETRY_DAYS was accepted")
	}
}
