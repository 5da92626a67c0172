package testdouble_test

import (
	"context"
	"os"
	"testing"

	"github.com/stripe/stripe-go/v84"

	"fulfillment/shared/testdouble"
)

// TestStripeProxyWithStripeMock runs stripe-go through the proxy to a real
// stripe-mock; set STRIPE_MOCK_URL (e.g. http://127.0.0.1:12111) to run it.
func TestStripeProxyWithStripeMock(t *testing.T) {
	upstream := os.Getenv("STRIPE_MOCK_URL")
	if upstream == "" {
		t.Skip("STRIPE_MOCK_URL not set")
	}
	p, err := testdouble.StartStripeProxy("127.0.0.1:0", upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	sc := stripe.NewClient("sk_test_123", stripe.WithBackends(stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL:               stripe.String(p.URL()),
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	})))

	for range 2 {
		params := &stripe.CustomerCreateParams{Email: stripe.String("a@example.com")}
		params.AddMetadata("order_id", "ord_1")
		params.SetIdempotencyKey("cust-ord_1")
		if _, err := sc.V1Customers.Create(context.Background(), params); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	calls := p.Calls()
	if len(calls) != 2 || calls[0].Replayed || !calls[1].Replayed {
		t.Fatalf("calls = %+v", calls)
	}
	if calls[0].Body["metadata[order_id]"] != "ord_1" || calls[0].Headers["Idempotency-Key"] != "cust-ord_1" {
		t.Errorf("recorded %+v", calls[0])
	}
}
