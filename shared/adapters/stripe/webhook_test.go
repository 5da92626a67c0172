package stripe

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"fulfillment/shared/domain/catalog"
)

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	payload := NewEvent("evt_1", "invoice.paid", time.Now(), map[string]any{"id": "in_1"})
	now := time.Now()
	single := Sign(payload, now, "whsec_new")
	// A valid v1 after an unknown one, as during Stripe's own key roll.
	mixed := fmt.Sprintf("t=%d,v1=%064x,%s", now.Unix(), 0, strings.SplitN(Sign(payload, now, "whsec_new"), ",", 2)[1])
	cases := []struct {
		name    string
		payload []byte
		header  string
		secrets []string
		ok      bool
	}{
		{"one signature, one secret", payload, single, []string{"whsec_new"}, true},
		{"two signatures, the second matches", payload, Sign(payload, now, "whsec_other", "whsec_new"), []string{"whsec_new"}, true},
		{"unknown v1 before a valid one", payload, mixed, []string{"whsec_new"}, true},
		{"rotation: old secret still configured", payload, Sign(payload, now, "whsec_old"), []string{"whsec_new", "whsec_old"}, true},
		{"rotation: new secret first", payload, single, []string{"whsec_new", "whsec_old"}, true},
		{"wrong secret", payload, single, []string{"whsec_old"}, false},
		{"no secrets configured", payload, single, nil, false},
		{"tampered payload", append([]byte(" "), payload...), single, []string{"whsec_new"}, false},
		{"expired", payload, Sign(payload, now.Add(-SignatureTolerance-time.Minute), "whsec_new"), []string{"whsec_new"}, false},
		{"just inside the tolerance", payload, Sign(payload, now.Add(-SignatureTolerance+time.Minute), "whsec_new"), []string{"whsec_new"}, true},
		{"missing header", payload, "", []string{"whsec_new"}, false},
		{"no v1 signature", payload, fmt.Sprintf("t=%d", now.Unix()), []string{"whsec_new"}, false},
		{"garbage header", payload, "hello", []string{"whsec_new"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := VerifySignature(c.payload, c.header, c.secrets)
			switch {
			case c.ok && err != nil:
				t.Errorf("refused: %v", err)
			case !c.ok && !errors.Is(err, ErrSignature):
				t.Errorf("err = %v, want ErrSignature", err)
			}
		})
	}
}

func parse(t *testing.T, payload []byte) Event {
	t.Helper()
	e, err := ParseEvent(payload)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var created = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func TestNormalizeHandledTypes(t *testing.T) {
	t.Parallel()
	meta := map[string]string{"plan_code": "ultimate", "seats": "25", "namespace_id": "ns-9", "storage_gb": "50", "auto_renew": "false"}
	term := time.Date(2027, 3, 10, 0, 0, 0, 0, time.UTC)
	check := func(t *testing.T, pe catalog.ProviderEvent, want catalog.ProviderEvent) {
		t.Helper()
		if pe.Provider != "stripe" || !pe.OccurredAt.Equal(created) {
			t.Errorf("envelope fields = %+v", pe)
		}
		if pe.SubscriptionID != want.SubscriptionID || pe.CheckoutSessionID != want.CheckoutSessionID || pe.InvoiceID != want.InvoiceID ||
			pe.PaymentStatus != want.PaymentStatus || pe.AmountCents != want.AmountCents || !pe.TermStart.Equal(want.TermStart) ||
			pe.FailureReason != want.FailureReason {
			t.Errorf("normalized = %+v\nwant         %+v", pe, want)
		}
	}
	for _, typ := range []string{"checkout.session.completed", "checkout.session.async_payment_succeeded", "checkout.session.async_payment_failed"} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			e := parse(t, NewEvent("evt_c", typ, created, CheckoutSession("cs_9", "cus_9", "b@example.com", "unpaid", 123400, meta)))
			pe, err := Normalize(e)
			if err != nil {
				t.Fatal(err)
			}
			check(t, pe, catalog.ProviderEvent{SubscriptionID: "sub-cs_9", CheckoutSessionID: "cs_9", PaymentStatus: "unpaid", AmountCents: 123400})
			if pe.ProviderType != typ || pe.ProviderEventID != "evt_c" || pe.Currency != "usd" {
				t.Errorf("ids = %+v", pe)
			}
			if pe.Customer == nil || pe.Customer.ProviderCustomerID != "cus_9" || pe.Customer.Email != "b@example.com" || pe.Customer.Name != "Demo Customer" {
				t.Errorf("customer = %+v", pe.Customer)
			}
			want := catalog.Order{PlanCode: "ultimate", Seats: 25, Deployment: "saas", NamespaceID: "ns-9", StorageGB: 50, AutoRenew: false, TermMonths: 12}
			if pe.Order == nil || *pe.Order != want {
				t.Errorf("order = %+v, want %+v", pe.Order, want)
			}
		})
	}
	t.Run("invoice.paid", func(t *testing.T) {
		t.Parallel()
		pe, err := Normalize(parse(t, NewEvent("evt_p", "invoice.paid", created, Invoice("in_1", "cus_1", "sub-cs_1", term, 34800, true))))
		if err != nil {
			t.Fatal(err)
		}
		check(t, pe, catalog.ProviderEvent{SubscriptionID: "sub-cs_1", InvoiceID: "in_1", AmountCents: 34800, TermStart: term})
	})
	t.Run("invoice.payment_failed", func(t *testing.T) {
		t.Parallel()
		pe, err := Normalize(parse(t, NewEvent("evt_f", "invoice.payment_failed", created, Invoice("in_2", "cus_1", "sub-cs_1", term, 34800, false))))
		if err != nil {
			t.Fatal(err)
		}
		check(t, pe, catalog.ProviderEvent{SubscriptionID: "sub-cs_1", InvoiceID: "in_2", AmountCents: 34800, TermStart: term, FailureReason: "invoice payment failed"})
	})
	t.Run("customer.subscription.deleted", func(t *testing.T) {
		t.Parallel()
		obj := map[string]any{"id": "sub_stripe", "object": "subscription", "metadata": map[string]string{MetaSubscriptionID: "sub-cs_1"}}
		pe, err := Normalize(parse(t, NewEvent("evt_d", "customer.subscription.deleted", created, obj)))
		if err != nil {
			t.Fatal(err)
		}
		check(t, pe, catalog.ProviderEvent{SubscriptionID: "sub-cs_1"})
	})
}

func TestNormalizeExpandedCustomer(t *testing.T) {
	t.Parallel()
	obj := CheckoutSession("cs_x", "", "", "paid", 1, map[string]string{"plan_code": "premium", "seats": "1"})
	obj["customer"] = map[string]any{"id": "cus_expanded", "object": "customer"}
	obj["customer_details"] = nil
	pe, err := Normalize(parse(t, NewEvent("evt_x", "checkout.session.completed", created, obj)))
	if err != nil {
		t.Fatal(err)
	}
	if pe.Customer.ProviderCustomerID != "cus_expanded" || pe.Customer.Email != "" {
		t.Errorf("customer = %+v", pe.Customer)
	}
}

func TestNormalizeBadMetadataKeepsWhatItRead(t *testing.T) {
	t.Parallel()
	t.Run("checkout with unreadable numbers", func(t *testing.T) {
		t.Parallel()
		meta := map[string]string{"plan_code": "premium", "seats": "ten", "namespace_id": "ns-1", "auto_renew": "maybe"}
		pe, err := Normalize(parse(t, NewEvent("evt_b", "checkout.session.completed", created, CheckoutSession("cs_b", "cus_b", "x@example.com", "paid", 5, meta))))
		if err == nil || !strings.Contains(err.Error(), "seats") || !strings.Contains(err.Error(), "auto_renew") {
			t.Fatalf("err = %v, want both bad fields named", err)
		}
		if pe.SubscriptionID != "sub-cs_b" || pe.ProviderEventID != "evt_b" || pe.Customer == nil || pe.Customer.ProviderCustomerID != "cus_b" ||
			pe.Order == nil || pe.Order.PlanCode != "premium" || pe.Order.NamespaceID != "ns-1" {
			t.Errorf("partial event = %+v, order %+v", pe, pe.Order)
		}
	})
	t.Run("invoice without term_start", func(t *testing.T) {
		t.Parallel()
		obj := Invoice("in_b", "cus_b", "sub-cs_b", created, 10, true)
		obj["metadata"] = map[string]string{MetaSubscriptionID: "sub-cs_b", MetaTermStart: "next year"}
		pe, err := Normalize(parse(t, NewEvent("evt_i", "invoice.paid", created, obj)))
		if err == nil || !strings.Contains(err.Error(), MetaTermStart) {
			t.Fatalf("err = %v", err)
		}
		if pe.SubscriptionID != "sub-cs_b" || pe.InvoiceID != "in_b" || pe.AmountCents != 10 {
			t.Errorf("partial event = %+v", pe)
		}
	})
	t.Run("invoice without subscription", func(t *testing.T) {
		t.Parallel()
		obj := Invoice("in_c", "cus_c", "", created, 10, false)
		obj["metadata"] = map[string]string{}
		pe, err := Normalize(parse(t, NewEvent("evt_j", "invoice.payment_failed", created, obj)))
		if err == nil || !strings.Contains(err.Error(), MetaSubscriptionID) {
			t.Fatalf("err = %v", err)
		}
		if pe.InvoiceID != "in_c" || pe.ProviderType != "invoice.payment_failed" {
			t.Errorf("partial event = %+v", pe)
		}
	})
	t.Run("subscription without metadata", func(t *testing.T) {
		t.Parallel()
		pe, err := Normalize(parse(t, NewEvent("evt_k", "customer.subscription.deleted", created, map[string]any{"id": "sub_x"})))
		if err == nil || pe.ProviderEventID != "evt_k" || pe.Provider != "stripe" {
			t.Errorf("pe = %+v, err = %v", pe, err)
		}
	})
	t.Run("object is not an object", func(t *testing.T) {
		t.Parallel()
		e := Event{ID: "evt_l", Type: "invoice.paid", Created: created.Unix()}
		e.Data.Object = json.RawMessage(`"in_1"`)
		if _, err := Normalize(e); err == nil {
			t.Error("Normalize accepted a string object")
		}
	})
}

func TestOrderFromMetadata(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		meta map[string]string
		want catalog.Order
		err  string
	}{
		{"defaults", map[string]string{}, catalog.Order{Deployment: "saas", AutoRenew: true, TermMonths: 12}, ""},
		{"only an instance id means self-managed", map[string]string{"instance_id": "i-1", "seats": "3"},
			catalog.Order{Deployment: "self_managed", InstanceID: "i-1", Seats: 3, AutoRenew: true, TermMonths: 12}, ""},
		{"namespace and instance stay SaaS", map[string]string{"namespace_id": "n", "instance_id": "i"},
			catalog.Order{Deployment: "saas", NamespaceID: "n", InstanceID: "i", AutoRenew: true, TermMonths: 12}, ""},
		{"explicit deployment is kept", map[string]string{"deployment": "self_managed", "namespace_id": "n"},
			catalog.Order{Deployment: "self_managed", NamespaceID: "n", AutoRenew: true, TermMonths: 12}, ""},
		{"every field", map[string]string{"plan_code": "premium", "seats": "7", "namespace_id": "n", "storage_gb": "20",
			"compute_minutes": "1000", "auto_renew": "false", "term_months": "1"},
			catalog.Order{PlanCode: "premium", Seats: 7, Deployment: "saas", NamespaceID: "n", StorageGB: 20, ComputeMinutes: 1000, AutoRenew: false, TermMonths: 1}, ""},
		{"empty values keep defaults", map[string]string{"seats": "", "term_months": "", "auto_renew": ""},
			catalog.Order{Deployment: "saas", AutoRenew: true, TermMonths: 12}, ""},
		{"bad number", map[string]string{"plan_code": "premium", "term_months": "a year"},
			catalog.Order{PlanCode: "premium", Deployment: "saas", AutoRenew: true}, "term_months"},
	}
	for _, c := range cases {
		got, err := OrderFromMetadata(c.meta)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: err = %v, want one naming %s", c.name, err, c.err)
		}
		if got != c.want {
			t.Errorf("%s: order = %+v\nwant %+v", c.name, got, c.want)
		}
	}
}

func TestParseEventAndInternalType(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{`nope`, `{}`, `{"id":"evt","type":"x"}`, `{"id":"","type":"x","created":1}`} {
		if _, err := ParseEvent([]byte(bad)); err == nil {
			t.Errorf("ParseEvent(%s) accepted", bad)
		}
	}
	want := map[string]string{
		"checkout.session.completed":               catalog.CheckoutCompleted,
		"checkout.session.async_payment_succeeded": catalog.CheckoutAsyncPaymentSucceed,
		"checkout.session.async_payment_failed":    catalog.CheckoutAsyncPaymentFailed,
		"invoice.paid":                             catalog.InvoicePaid,
		"invoice.payment_failed":                   catalog.InvoicePaymentFailed,
		"customer.subscription.deleted":            catalog.ProviderSubscriptionDeleted,
	}
	for stripeType, internal := range want {
		if got, ok := InternalType(stripeType); !ok || got != internal {
			t.Errorf("InternalType(%s) = %s, %v", stripeType, got, ok)
		}
	}
	if _, ok := InternalType("customer.created"); ok {
		t.Error("customer.created is handled")
	}
}
