package alerting_test

import (
	"context"
	"strings"
	"testing"

	"fulfillment/shared/adapters/alerting"
	"fulfillment/shared/runtime/failure"
	"fulfillment/shared/testsupport/testdouble"
)

const routingKey = "R0123456789abcdef0123456789abcde" // 32 characters, as PagerDuty requires

var alert = alerting.Alert{
	DedupKey: "provision-failed/ord_1",
	Summary:  "Provisioning failed for <order> ord_1",
	Source:   "provision-function",
	Severity: "critical",
	Details:  map[string]any{"order_id": "ord_1", "attempts": 5},
}

func TestSlackNotify(t *testing.T) {
	t.Parallel()
	s, err := testdouble.StartSlack("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	hook := s.URL() + "/services/T000/B000/XXXX"

	if err := alerting.NewSlack(hook, nil).Notify(context.Background(), alert); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	calls := s.Calls()
	if len(calls) != 1 || calls[0].Path != "/services/T000/B000/XXXX" || calls[0].Status != 200 {
		t.Fatalf("calls = %+v", calls)
	}
	body := calls[0].Body
	if text, _ := body["text"].(string); !strings.Contains(text, "[CRITICAL]") || !strings.Contains(text, "ord_1") {
		t.Errorf("text = %q", body["text"])
	}
	if !strings.Contains(calls[0].Raw, `&lt;order&gt;`) {
		t.Errorf("blocks not escaped: %s", calls[0].Raw)
	}
	if blocks, _ := body["blocks"].([]any); len(blocks) != 3 {
		t.Errorf("blocks = %v", body["blocks"])
	}
}

func TestSlackErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		fault     int
		alert     alerting.Alert
		permanent bool
	}{
		{name: "429 transient", fault: 429, alert: alert},
		{name: "503 transient", fault: 503, alert: alert},
		{name: "404 no_service permanent", fault: 404, alert: alert, permanent: true},
		{name: "empty summary", alert: alerting.Alert{Source: "x"}, permanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := testdouble.StartSlack("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			if tt.fault != 0 {
				s.FailNext(1, tt.fault)
			}
			err = alerting.NewSlack(s.URL()+"/hook", nil).Notify(context.Background(), tt.alert)
			if err == nil {
				t.Fatal("Notify succeeded, want an error")
			}
			if got := failure.IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v (err: %v)", got, tt.permanent, err)
			}
		})
	}
}

func startPagerDuty(t *testing.T) *testdouble.PagerDuty {
	t.Helper()
	pd, err := testdouble.StartPagerDuty("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pd.Close() })
	return pd
}

func TestPagerDutyTrigger(t *testing.T) {
	t.Parallel()
	pd := startPagerDuty(t)
	if err := alerting.NewPagerDuty(pd.URL(), routingKey, nil).Trigger(context.Background(), alert); err != nil {
		t.Fatalf("Trigger: %v", err)
	}
	calls := pd.Calls()
	if len(calls) != 1 || calls[0].Path != "/v2/enqueue" || calls[0].Status != 202 {
		t.Fatalf("calls = %+v", calls)
	}
	body := calls[0].Body
	payload := body["payload"].(map[string]any)
	if body["routing_key"] != routingKey || body["event_action"] != "trigger" || body["dedup_key"] != alert.DedupKey {
		t.Errorf("event = %v", body)
	}
	if payload["summary"] != alert.Summary || payload["source"] != alert.Source || payload["severity"] != "critical" {
		t.Errorf("payload = %v", payload)
	}
	if payload["custom_details"].(map[string]any)["order_id"] != "ord_1" {
		t.Errorf("custom_details = %v", payload["custom_details"])
	}
}

func TestPagerDutyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		key       string
		fault     int
		alert     alerting.Alert
		permanent bool
		calls     int
	}{
		{name: "400 invalid event", key: "short", alert: alert, permanent: true, calls: 1},
		{name: "429 transient", key: routingKey, fault: 429, alert: alert, calls: 1},
		{name: "500 transient", key: routingKey, fault: 500, alert: alert, calls: 1},
		{name: "bad severity", key: routingKey, alert: alerting.Alert{Summary: "s", Source: "x", Severity: "fatal"}, permanent: true},
		{name: "no source", key: routingKey, alert: alerting.Alert{Summary: "s"}, permanent: true},
		{name: "no routing key", alert: alert, permanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pd := startPagerDuty(t)
			if tt.fault != 0 {
				pd.FailNext(1, tt.fault)
			}
			err := alerting.NewPagerDuty(pd.URL(), tt.key, nil).Trigger(context.Background(), tt.alert)
			if err == nil {
				t.Fatal("Trigger succeeded, want an error")
			}
			if got := failure.IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v (err: %v)", got, tt.permanent, err)
			}
			if got := len(pd.Calls()); got != tt.calls {
				t.Errorf("double got %d calls, want %d", got, tt.calls)
			}
		})
	}
}

func TestPagerDutyTruncatesLongSummary(t *testing.T) {
	t.Parallel()
	pd := startPagerDuty(t)
	a := alert
	a.Summary = strings.Repeat("é", 1000) // 2000 bytes
	if err := alerting.NewPagerDuty(pd.URL(), routingKey, nil).Trigger(context.Background(), a); err != nil {
		t.Fatalf("Trigger: %v", err)
	}
	got := pd.Calls()[0].Body["payload"].(map[string]any)["summary"].(string)
	if len(got) > 1024 || !strings.HasSuffix(got, "…") {
		t.Errorf("summary is %d bytes, ends %q", len(got), got[len(got)-5:])
	}
}

// An unreachable webhook fails with an error that is logged and kept in
// dead_letters: it may name Slack and the host, never the webhook's secret path.
func TestUnreachableSlackErrorHidesWebhookPath(t *testing.T) {
	t.Parallel()
	const secretPath = "/services/T0SECRET/B0SECRET/xoxSecretWebhookToken"
	err := alerting.NewSlack("http://127.0.0.1:1"+secretPath+"?token=q1secret", nil).Notify(context.Background(), alert)
	if err == nil {
		t.Fatal("Notify succeeded against an unreachable webhook")
	}
	if failure.IsPermanent(err) {
		t.Errorf("network error is permanent: %v", err)
	}
	msg := err.Error()
	for _, secret := range []string{"T0SECRET", "B0SECRET", "xoxSecretWebhookToken", "q1secret"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q leaks the webhook URL (%s)", msg, secret)
		}
	}
	if !strings.Contains(msg, "slack") || !strings.Contains(msg, "127.0.0.1:1") {
		t.Errorf("error %q does not name the service and host", msg)
	}
}

// A webhook URL that does not even parse must not be echoed either.
func TestMalformedSlackURLErrorHidesIt(t *testing.T) {
	t.Parallel()
	err := alerting.NewSlack("http://hooks.slack.example/services/T0SECRET/B0SECRET/x%zzSecret", nil).Notify(context.Background(), alert)
	if err == nil {
		t.Fatal("Notify succeeded with a malformed URL")
	}
	if msg := err.Error(); strings.Contains(msg, "T0SECRET") || strings.Contains(msg, "Secret") {
		t.Errorf("error %q leaks the webhook URL", msg)
	}
}
