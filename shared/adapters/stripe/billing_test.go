package stripe

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"fulfillment/shared/runtime/failure"
	"fulfillment/shared/testsupport/connrounds"
)

// payAnswering pays an invoice against a server that always gives one answer.
func payAnswering(t *testing.T, status int, body string) error {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	b := NewBilling("sk_test_x", srv.URL, 5*time.Second)
	return b.RetryPayment(context.Background(), "in_1", "renewal-sub-1-2027-01-01-pay")
}

func TestPayClassifiesStripesAnswers(t *testing.T) {
	for _, tc := range []struct {
		name              string
		status            int
		body              string
		unknown, perm, ok bool
	}{
		{name: "paid", status: 200, body: `{"id":"in_1","object":"invoice","status":"paid"}`, ok: true},
		{name: "card declined is an answer", status: 402, body: `{"error":{"type":"card_error","code":"card_declined","message":"declined"}}`, ok: true},
		{name: "key in use by a call in flight", status: 409, body: `{"error":{"type":"invalid_request_error","code":"idempotency_key_in_use","message":"in progress"}}`},
		{name: "bad request", status: 400, body: `{"error":{"type":"invalid_request_error","message":"no such invoice"}}`, perm: true},
		{name: "server error", status: 500, body: `{"error":{"type":"api_error","message":"boom"}}`, unknown: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := payAnswering(t, tc.status, tc.body)
			_, unknown := IsOutcomeUnknown(err)
			if (err == nil) != tc.ok || unknown != tc.unknown || failure.IsPermanent(err) != tc.perm {
				t.Fatalf("err = %v: unknown %v, permanent %v; want ok %v unknown %v permanent %v",
					err, unknown, failure.IsPermanent(err), tc.ok, tc.unknown, tc.perm)
			}
		})
	}
}

// InvoiceState asks for the invoice's payments (Stripe includes them only
// when expanded) and reads the payment intent that paid it, the id its
// refunds and disputes name.
func TestInvoiceStateReadsThePaymentIntentThatPaidIt(t *testing.T) {
	var expand string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		expand = r.URL.Query().Get("expand[0]")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"in_1","object":"invoice","status":"paid","payments":{"object":"list","data":[
			{"id":"inpay_1","object":"invoice_payment","status":"paid","payment":{"type":"payment_intent","payment_intent":"pi_1"}}]}}`))
	}))
	t.Cleanup(srv.Close)
	got, err := NewBilling("sk_test_x", srv.URL, 5*time.Second).InvoiceState(context.Background(), "in_1")
	if err != nil || got.Status != InvoicePaid || got.PaymentIntentID != "pi_1" {
		t.Fatalf("InvoiceState = %+v, %v; want paid by pi_1", got, err)
	}
	if expand != "payments" {
		t.Errorf("expand[0] = %q, want payments", expand)
	}
}

// A customer made for a subscription is found again by its e-mail and
// metadata, so a guest's charge retried days later (its idempotency key
// forgotten by Stripe) does not make a second one; none found, one is made
// with the subscription in its metadata.
func TestCustomerMadeForASubscriptionIsReused(t *testing.T) {
	for _, tc := range []struct {
		name, listed, want string
		creates            int
	}{
		{"found", `{"id":"cus_old","object":"customer","metadata":{"subscription_id":"sub-1"}}`, "cus_old", 0},
		{"another subscription's", `{"id":"cus_other","object":"customer","metadata":{"subscription_id":"sub-2"}}`, "cus_new", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var creates int
			var created, email string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if r.Method == http.MethodGet {
					email = r.URL.Query().Get("email")
					_, _ = w.Write([]byte(`{"object":"list","has_more":false,"data":[` + tc.listed + `]}`))
					return
				}
				creates++
				_ = r.ParseForm()
				created = r.PostForm.Get("metadata[subscription_id]")
				_, _ = w.Write([]byte(`{"id":"cus_new","object":"customer"}`))
			}))
			t.Cleanup(srv.Close)
			b := NewBilling("sk_test_x", srv.URL, 5*time.Second)
			id, err := b.CreateCustomer(context.Background(), CustomerRequest{Email: "guest@example.com", Key: "customer-sub-1", SubscriptionID: "sub-1"})
			if err != nil || id != tc.want || creates != tc.creates || email != "guest@example.com" {
				t.Fatalf("customer %q, %v, %d created, listed by %q; want %s, %d created", id, err, creates, email, tc.want, tc.creates)
			}
			if creates == 1 && created != "sub-1" {
				t.Errorf("created with metadata subscription_id %q, want sub-1", created)
			}
		})
	}
}

// Calls to Stripe at once keep their connections (Go's default client kept
// 2, and each call beyond them dialed, and over TLS shook hands, anew).
func TestConcurrentCallsToStripeKeepTheirConnections(t *testing.T) {
	srv := connrounds.Start(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"in_1","object":"invoice","status":"paid"}`))
	})
	b := NewBilling("sk_test_x", srv.URL, 5*time.Second)
	dialed := srv.Dialed(t, 8, 5, func() error {
		got, err := b.InvoiceState(context.Background(), "in_1")
		if err == nil && got.Status != InvoicePaid {
			err = fmt.Errorf("InvoiceState = %+v", got)
		}
		return err
	})
	if dialed != 8 {
		t.Errorf("5 rounds of 8 calls at once dialed %d connections, want 8", dialed)
	}
}
