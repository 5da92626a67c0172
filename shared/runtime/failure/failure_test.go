package failure_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"fulfillment/shared/runtime/failure"
)

func TestCallNamesServiceAndHostOnly(t *testing.T) {
	t.Parallel()
	cause := context.DeadlineExceeded
	err := failure.Call("slack", &url.Error{Op: "Post", URL: "https://hooks.slack.com/services/T1/B2/s3cret?x=y", Err: cause})
	msg := err.Error()
	if strings.Contains(msg, "s3cret") || strings.Contains(msg, "/services") || strings.Contains(msg, "x=y") {
		t.Errorf("Call kept the URL: %q", msg)
	}
	if !strings.Contains(msg, "slack") || !strings.Contains(msg, "hooks.slack.com") {
		t.Errorf("Call = %q, want the service and host", msg)
	}
	if !errors.Is(err, cause) {
		t.Errorf("Call lost its cause: %v", err)
	}
	if failure.IsPermanent(err) {
		t.Error("Call classified the error as permanent")
	}
	if failure.Call("x", nil) != nil {
		t.Error("Call(nil) is not nil")
	}
}

func TestScrubRemovesEmailsAndSecretShapes(t *testing.T) {
	t.Parallel()
	leaks := map[string]string{
		"e-mail":             "duplicate value: Buyer.Name+tag@Example.co.uk on record a0D1",
		"e-mail without TLD": "user root@localhost refused",
		"bearer token":       "sent Authorization: Bearer 00Dxx0000001gPL!AQ4AQFakeToken",
		"JWT":                "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl expired",
		"Stripe secret key":  "Invalid API Key provided: sk_live_51Habcdefghijk",
		"Stripe restricted":  "key rk_test_51Habcdefghijk",
		"webhook secret":     "whsec_local_fulfillment did not match",
		"Slack webhook":      `Post "https://hooks.slack.com/services/T0AAA/B0BBB/XXXXsecret": EOF`,
		"Slack webhook path": `Post "http://127.0.0.1:9/services/T000/B000/local": EOF`,
		"Slack token":        "auth xoxb-1234-5678-abcdef failed",
		"Salesforce session": "session 00Dlocal!salesforce-access-token invalid",
		"GitLab token":       "glpat-abcdefghijklmnopqrstu",
	}
	secrets := []string{"Buyer.Name+tag@Example.co.uk", "root@localhost", "AQ4AQFakeToken", "eyJhbGciOiJIUzI1NiJ9",
		"sk_live_51H", "rk_test_51H", "whsec_local", "XXXXsecret", "B000/local", "xoxb-1234", "salesforce-access-token", "glpat-abc"}
	for what, text := range leaks {
		got := failure.Scrub(text)
		for _, s := range secrets {
			if strings.Contains(got, s) {
				t.Errorf("%s: Scrub(%q) = %q keeps %q", what, text, got, s)
			}
		}
	}
	for _, keep := range []string{
		"salesforce answered 400: INVALID_FIELD_FOR_INSERT_UPDATE",
		"gitlab: Post gitlab.example.com: dial tcp 10.0.0.1:443: connect: connection refused",
		"subscription sub-cs_1 version 3: order ord_1 not found",
	} {
		if got := failure.Scrub(keep); got != keep {
			t.Errorf("Scrub(%q) = %q, want it unchanged", keep, got)
		}
	}
}
