package renewal

import (
	"testing"

	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/idempotency"
	"fulfillment/shared/domain/subscription"
)

// A subscription bought through the checkout function renews off-session
// with the card its checkout saved, made the customer's default.
func TestRenewalChargesTheSavedPaymentMethodOffSession(t *testing.T) {
	fx := setup(t, options{})
	s := fx.seed(t, "saved", func(s *subscription.Subscription) { s.SavedPaymentFrom = "pi_cs_saved" })
	fx.stripe.SavePaymentMethod("pi_cs_saved", "pm_card_saved")
	fx.review(t, s.ID, day("2027-01-08"))
	key := idempotency.Renewal(s.ID, s.TermEnd)

	var setDefault int
	for _, c := range fx.stripe.Calls() {
		if c.Method == "POST" && c.Path == "/v1/customers/cus_saved" && c.Body["invoice_settings[default_payment_method]"] == "pm_card_saved" {
			setDefault++
		}
	}
	if setDefault != 1 {
		t.Fatalf("customer default payment method set %d times, want 1", setDefault)
	}
	invoices := fx.charged("/v1/invoices", key)
	if len(invoices) != 1 || invoices[0].Body["default_payment_method"] != "pm_card_saved" || invoices[0].Body["collection_method"] != "charge_automatically" {
		t.Fatalf("renewal invoices = %+v", invoices)
	}
	pays := fx.charged("/pay", key)
	if len(pays) != 1 || pays[0].Body["payment_method"] != "pm_card_saved" || pays[0].Body["off_session"] != "true" {
		t.Fatalf("renewal payments = %+v", pays)
	}
}

// A checkout customer without a saved payment method gets the renewal
// invoice sent for manual payment: nothing is charged off-session.
func TestRenewalWithoutSavedPaymentMethodSendsTheInvoice(t *testing.T) {
	fx := setup(t, options{})
	s := fx.seed(t, "nocard", func(s *subscription.Subscription) { s.SavedPaymentFrom = "pi_cs_nocard" })
	fx.review(t, s.ID, day("2027-01-08"))
	key := idempotency.Renewal(s.ID, s.TermEnd)
	invoices := fx.charged("/v1/invoices", key)
	if len(invoices) != 1 || invoices[0].Body["collection_method"] != "send_invoice" || invoices[0].Body["days_until_due"] != "14" {
		t.Fatalf("renewal invoices = %+v", invoices)
	}
	if n := len(fx.charged("/pay", key)); n != 0 {
		t.Fatalf("%d pay calls for a customer without a payment method", n)
	}
	if n := len(fx.charged("/send", key)); n != 1 {
		t.Fatalf("%d send calls, want 1", n)
	}
	if raised := fx.sub(t, s.ID); !raised.RenewalPendingFor.Equal(s.TermEnd) {
		t.Fatalf("renewal not pending: %+v", raised.RenewalPendingFor)
	}
}

// A mid-term change (added seats) is charged off-session with the saved card too.
func TestAChangeIsChargedWithTheSavedPaymentMethod(t *testing.T) {
	fx := setup(t, options{})
	s := fx.seed(t, "savedchange", func(s *subscription.Subscription) { s.SavedPaymentFrom = "pi_cs_savedchange" })
	fx.stripe.SavePaymentMethod("pi_cs_savedchange", "pm_card_change")
	fx.handle(t, command(t, "cmd-saved-add", catalog.CommandAddSeats, catalog.Command{SubscriptionID: s.ID, Seats: 2}, day("2026-07-16")))
	invoices := fx.charged("/v1/invoices", "change-cmd-saved-add")
	pays := fx.charged("/pay", "change-cmd-saved-add")
	if len(invoices) != 1 || invoices[0].Body["default_payment_method"] != "pm_card_change" ||
		len(pays) != 1 || pays[0].Body["payment_method"] != "pm_card_change" || pays[0].Body["off_session"] != "true" {
		t.Fatalf("change invoices %+v, payments %+v", invoices, pays)
	}
}

// A guest checkout (payment mode, "customer": null) left the subscription
// without a Stripe customer: its renewal first creates one, once, from the
// billing contact, keeps it, and e-mails the invoice for manual payment (a
// new customer has no card to charge).
func TestAGuestsRenewalCreatesItsCustomerAndSendsTheInvoice(t *testing.T) {
	fx := setup(t, options{})
	s := fx.seed(t, "guest", func(s *subscription.Subscription) {
		s.Customer = catalog.Customer{Email: "guest@example.com", Name: "Guest Buyer"}
	})
	fx.review(t, s.ID, day("2027-01-08"))
	fx.review(t, s.ID, day("2027-01-08")) // a repeated tick creates nothing more

	var created []map[string]any
	for _, c := range fx.stripe.Calls() {
		if c.Method == "POST" && c.Path == "/v1/customers" && !c.Replayed {
			created = append(created, c.Body)
		}
	}
	if len(created) != 1 || created[0]["email"] != "guest@example.com" || created[0]["name"] != "Guest Buyer" {
		t.Fatalf("customers created = %+v, want one for guest@example.com", created)
	}
	got := fx.sub(t, s.ID)
	if got.Customer.ProviderCustomerID == "" || !got.RenewalPendingFor.Equal(s.TermEnd) {
		t.Fatalf("customer %q, renewal pending for %s; want the created customer kept and the renewal raised", got.Customer.ProviderCustomerID, got.RenewalPendingFor)
	}
	key := idempotency.Renewal(s.ID, s.TermEnd)
	invoices := fx.charged("/v1/invoices", key)
	if len(invoices) != 1 || invoices[0].Body["customer"] != got.Customer.ProviderCustomerID || invoices[0].Body["collection_method"] != "send_invoice" {
		t.Fatalf("renewal invoices = %+v", invoices)
	}
	if n := len(fx.charged("/send", key)); n != 1 {
		t.Fatalf("%d send calls, want 1", n)
	}
}
