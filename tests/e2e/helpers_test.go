package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fulfillment/infra/demo"
	"fulfillment/infra/localstack"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/testsupport/testdouble"
)

var seq atomic.Int64

// uniq makes ids unique within this run.
func uniq(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, time.Now().UnixNano()%1e9, seq.Add(1))
}

// eventually polls cond until it holds or the deadline passes: outcomes
// travel through Pub/Sub pushes, so tests wait for them, never sleep.
func eventually(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not true after %s; last seen: %s", what, within, last)
}

func purchase(t *testing.T) demo.Purchase {
	t.Helper()
	return demo.Purchase{
		SessionID: uniq("cs_test"), CustomerID: uniq("cus"), Email: "buyer@example.com",
		Plan: "premium", Seats: 10, NamespaceID: uniq("ns"), AutoRenew: true, Paid: true,
	}
}

func send(t *testing.T, payload []byte) demo.Response {
	t.Helper()
	resp, err := demo.SendWebhook(context.Background(), stack.URLs["checkout-webhook"], localstack.WebhookSecret, payload)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func mustAccept(t *testing.T, payload []byte) {
	t.Helper()
	if r := send(t, payload); r.Status != 200 {
		t.Fatalf("webhook answered %d %s", r.Status, r.Body)
	}
}

func waitSubscription(t *testing.T, id string, cond func(*subscription.Subscription) bool) *subscription.Subscription {
	t.Helper()
	var sub *subscription.Subscription
	eventually(t, 20*time.Second, "subscription "+id, func() (bool, string) {
		s, err := stack.Store.Subscription(context.Background(), nil, id)
		if err != nil {
			return false, err.Error()
		}
		sub = s
		return cond(s), fmt.Sprintf("%+v", *s)
	})
	return sub
}

// callsTo filters a double's calls by path fragment.
func callsTo(calls []testdouble.Call, pathPart string) []testdouble.Call {
	var out []testdouble.Call
	for _, c := range calls {
		if strings.Contains(c.Path, pathPart) {
			out = append(out, c)
		}
	}
	return out
}

func gitlabPath(namespaceID string) string {
	return "/api/v4/internal/gitlab_subscriptions/namespaces/" + namespaceID + "/provision"
}

// baseProduct digs base_product out of a recorded provisioning body.
func baseProduct(c testdouble.Call) map[string]any {
	prov, _ := c.Body["provision"].(map[string]any)
	bp, _ := prov["base_product"].(map[string]any)
	return bp
}

var background = context.Background()

func ctxTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(background, d)
}
