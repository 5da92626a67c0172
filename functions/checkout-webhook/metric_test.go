package checkoutwebhook

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/runtime/logging"
	"fulfillment/shared/testsupport/logbuf"
)

// monitoringTF defines the log-based metric the payment-failure alert
// counts, from the webhook's log lines.
const monitoringTF = "../../terraform/modules/platform/monitoring.tf"

// jsonPayloadCondition is one `jsonPayload.key="value"` or
// `jsonPayload.key=("a" OR "b")` term of a Cloud Logging filter.
var jsonPayloadCondition = regexp.MustCompile(`jsonPayload\.(\w+)=(\([^)]*\)|\\?"[^"\\]*\\?")`)

// paymentFailureConditions reads the payment_failures metric's filter and
// returns what it asks of a log line's fields: each key, the values it takes.
func paymentFailureConditions(t *testing.T) map[string][]string {
	t.Helper()
	tf, err := os.ReadFile(monitoringTF)
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)payment_failures = \{.*?filter\s*=\s*"(.*?)"\n`).FindSubmatch(tf)
	if block == nil {
		t.Fatalf("%s: no payment_failures metric with a filter", monitoringTF)
	}
	want := map[string][]string{}
	for _, m := range jsonPayloadCondition.FindAllStringSubmatch(string(block[1]), -1) {
		for _, v := range regexp.MustCompile(`\\?"([^"\\]*)\\?"`).FindAllStringSubmatch(m[2], -1) {
			want[m[1]] = append(want[m[1]], v[1])
		}
	}
	for _, key := range []string{"message", "stripe_type"} {
		if len(want[key]) == 0 {
			t.Fatalf("payment_failures' filter has no jsonPayload.%s condition: %s", key, block[1])
		}
	}
	return want
}

// matches says whether a JSON log line meets every condition.
func matches(line map[string]any, conditions map[string][]string) bool {
	for key, values := range conditions {
		got, _ := line[key].(string)
		found := false
		for _, v := range values {
			found = found || got == v
		}
		if !found {
			return false
		}
	}
	return true
}

// The payment-failure alert pages over a number of failures in a window: a
// failure Stripe delivers three times (its retries, our instances' races)
// is one failure, and counts once.
func TestAPaymentFailureCountsOnceInItsAlertMetric(t *testing.T) {
	conditions := paymentFailureConditions(t)
	var logs logbuf.Buffer
	fx := setupDeps(t, Deps{Logger: logging.New(&logs, "checkout-webhook", "info", "")})
	payload := stripe.NewEvent("evt_fail_1", "invoice.payment_failed", time.Now(),
		stripe.Invoice("in_1", "cus_1", "sub_1", time.Now(), 34800, false))
	for i := range 3 {
		if code, answer := fx.send(t, payload, sign(payload)); code != http.StatusOK {
			t.Fatalf("delivery %d answered %d %v", i+1, code, answer)
		}
	}
	fx.countRepeats(t)

	counted, accepted := 0, 0
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		if line["message"] == "webhook accepted" {
			accepted++
		}
		if matches(line, conditions) {
			counted++
		}
	}
	if accepted != 3 || counted != 1 {
		t.Errorf("3 deliveries of one failure: %d \"webhook accepted\" lines, %d counted by the metric; want 3 and 1\n%s", accepted, counted, logs.String())
	}
}
