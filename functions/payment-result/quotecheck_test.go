package paymentresult

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/quote"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/runtime/failure"
	"fulfillment/shared/testsupport/storetest"
)

// quoted stores quote q_1 for session cs_q: $1,740 (5 premium seats), valid for an hour after t0.
func quotedFixture(t *testing.T, policy QuotePolicy) fixture {
	t.Helper()
	st := storetest.Open(t, "prq")
	rec := &pubsub.Recorder{}
	f := New(Deps{Store: st, Publisher: rec, DeadLetterTopic: deadLetterTopic, Logger: slog.New(slog.DiscardHandler), Quotes: policy})
	q := store.Quote{ID: "q_1", Order: *order("premium"), Currency: "usd", TotalCents: 174000, CreatedAt: t0.Add(-time.Minute),
		ExpiresAt: t0.Add(time.Hour), Status: store.QuoteSession, SessionID: "cs_q", CustomerID: "cus_1"}
	if _, _, err := st.CreateQuote(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	return fixture{st: st, rec: rec, f: f}
}

func quotedCheckout(t *testing.T, id, session string, paid, discount int64, currency string, at time.Time, d *catalog.CheckoutDetails) event.Event {
	if d == nil {
		d = &catalog.CheckoutDetails{QuoteID: "q_1"}
	}
	d.DiscountCents = discount
	return providerEvent(t, id, catalog.CheckoutCompleted, catalog.ProviderEvent{
		OccurredAt: at, SubscriptionID: "sub-" + session, CheckoutSessionID: session, PaymentStatus: "paid", PaymentIntentID: "pi_" + session,
		AmountCents: paid, Currency: currency, Order: order("premium"), Checkout: d,
		Customer: &catalog.Customer{ProviderCustomerID: "cus_1", Email: "a@example.com"},
	})
}

func TestCompletionMatchingItsQuoteIsProvisioned(t *testing.T) {
	t.Parallel()
	fx := quotedFixture(t, QuotePolicy{Require: true})
	fx.handle(t, quotedCheckout(t, "evt_exact", "cs_q", 174000, 0, "usd", t0, nil))
	// Renewals charge the card this checkout saved.
	if s := fx.sub(t, "sub-cs_q"); s.Status != "active" || s.SavedPaymentFrom != "pi_cs_q" {
		t.Fatalf("status = %s, saved payment from %q", s.Status, s.SavedPaymentFrom)
	}
}

func TestCompletionWithPromotionDiscountIsProvisioned(t *testing.T) {
	t.Parallel()
	fx := quotedFixture(t, QuotePolicy{Require: true})
	q, err := fx.st.Quote(context.Background(), nil, "q_1")
	if err != nil {
		t.Fatal(err)
	}
	q.PromotionCode, q.PromotionCodeID = "FALL10", "promo_fall10" // the code the buyer gave
	if err := fx.st.SaveQuote(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	ev := quotedCheckout(t, "evt_promo", "cs_q", 174000-17400, 17400, "usd", t0, nil)
	fx.handle(t, ev)
	if s := fx.sub(t, "sub-cs_q"); s.Status != "active" {
		t.Fatalf("status = %s", s.Status)
	}
}

func TestCompletionsNotMatchingTheirQuoteAreRefusedRecordedAndDeadLettered(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		session  string
		paid     int64
		currency string
		at       time.Time
		details  *catalog.CheckoutDetails
		reason   string
		discount int64 // Stripe's total_details.amount_discount
	}{
		{"amount below the quote", "cs_q", 100, "usd", t0, nil, quote.ReasonAmountMismatch, 0},
		{"another currency", "cs_q", 174000, "eur", t0, nil, quote.ReasonCurrencyMismatch, 0},
		{"expired quote", "cs_q", 174000, "usd", t0.Add(2 * time.Hour), nil, quote.ReasonExpired, 0},
		{"session we did not create, quote id copied", "cs_forged", 174000, "usd", t0, nil, quote.ReasonForeignSession, 0},
		{"unknown quote", "cs_q", 174000, "usd", t0, &catalog.CheckoutDetails{QuoteID: "q_nope"}, quote.ReasonUnknownQuote, 0},
		{"session without a quote", "cs_plain", 174000, "usd", t0, &catalog.CheckoutDetails{}, quote.ReasonNoQuote, 0},
		{"payment link not allowed", "cs_link", 174000, "usd", t0, &catalog.CheckoutDetails{PaymentLinkID: "plink_other"}, quote.ReasonNoQuote, 0},
		{"a discount the quote did not allow", "cs_q", 174000 - 17400, "usd", t0, nil, quote.ReasonUnquotedDiscount, 17400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fx := quotedFixture(t, QuotePolicy{Require: true, PaymentLinks: []string{"plink_ok"}})
			ev := quotedCheckout(t, "evt_1", c.session, c.paid, c.discount, c.currency, c.at, c.details)
			fx.handle(t, ev)
			fx.handle(t, ev) // a redelivery changes nothing
			if _, err := fx.st.Subscription(context.Background(), nil, "sub-"+c.session); !store.IsNotFound(err) {
				t.Fatalf("subscription provisioned: err = %v", err)
			}
			r, found, err := fx.st.CheckoutRefusalOf(context.Background(), c.session)
			if err != nil || !found || r.Reason != c.reason || r.PaidCents != c.paid {
				t.Fatalf("refusal = %+v found=%v err=%v, want reason %s", r, found, err, c.reason)
			}
			var mismatches []catalog.QuoteMismatch
			for _, e := range fx.rec.On(catalog.TopicSubscriptionEvents) {
				if e.Type() == catalog.CheckoutQuoteMismatch {
					var m catalog.QuoteMismatch
					_ = json.Unmarshal(e.Data(), &m)
					mismatches = append(mismatches, m)
				}
				if e.Type() == catalog.SubscriptionActivated {
					t.Fatalf("activated: %v", e)
				}
			}
			if len(mismatches) == 0 || mismatches[0].Reason != c.reason || mismatches[0].CheckoutSessionID != c.session {
				t.Fatalf("quote_mismatch events = %+v", mismatches)
			}
			if c.reason == quote.ReasonAmountMismatch && mismatches[0].ExpectedCents != 174000 {
				t.Fatalf("expected_cents = %d", mismatches[0].ExpectedCents)
			}
			// The quote keeps the verdict on its own session only: a copied
			// quote id must not spoil the real session's.
			wantStatus := store.QuoteSession
			if c.session == "cs_q" && c.details == nil { // q_1's own session
				wantStatus = store.QuoteRefused
			}
			if q, _ := fx.st.Quote(context.Background(), nil, "q_1"); q.Status != wantStatus {
				t.Fatalf("quote status %q, want %q", q.Status, wantStatus)
			}
			if dl := fx.rec.On(deadLetterTopic); len(dl) == 0 {
				t.Fatal("not dead-lettered")
			}
			if _, found := storetest.Lookup[consumer.DeadLetter](t, fx.st, store.DeadLetters, Name+"_"+cloudevent.Key(ev)); !found {
				t.Fatal("no dead_letters record")
			}
		})
	}
}

func TestAllowedPaymentLinkAndNoRequirementProvisionWithoutQuote(t *testing.T) {
	t.Parallel()
	fx := quotedFixture(t, QuotePolicy{Require: true, PaymentLinks: []string{"plink_ok"}})
	fx.handle(t, quotedCheckout(t, "evt_link", "cs_link", 5000, 0, "usd", t0, &catalog.CheckoutDetails{PaymentLinkID: "plink_ok"}))
	if s := fx.sub(t, "sub-cs_link"); s.Status != "active" || s.SavedPaymentFrom != "pi_cs_link" {
		// An allowed payment link saves the card (setup_future_usage, see
		// docs/checkout.md): its renewals are charged with it as ours are.
		t.Fatalf("status = %s, saved payment from %q, want active, from pi_cs_link", s.Status, s.SavedPaymentFrom)
	}
	lax := quotedFixture(t, QuotePolicy{})
	lax.handle(t, quotedCheckout(t, "evt_plain", "cs_plain", 5000, 0, "usd", t0, &catalog.CheckoutDetails{}))
	if s := lax.sub(t, "sub-cs_plain"); s.Status != "active" {
		t.Fatalf("status = %s", s.Status)
	}
	// Without the requirement a session with a quote id is still checked.
	lax.handle(t, quotedCheckout(t, "evt_low", "cs_q", 1, 0, "usd", t0, nil))
	if _, found, _ := lax.st.CheckoutRefusalOf(context.Background(), "cs_q"); !found {
		t.Fatal("a quoted session paid below its quote was provisioned")
	}
}

// With Stripe Tax the quote's total plus the tax Stripe added is paid; the
// ledger keeps the tax apart from the price.
func TestTaxIsAcceptedOnTopOfTheQuoteAndKeptApart(t *testing.T) {
	t.Parallel()
	fx := quotedFixture(t, QuotePolicy{Require: true})
	q, err := fx.st.Quote(context.Background(), nil, "q_1")
	if err != nil {
		t.Fatal(err)
	}
	q.Tax = true
	if err := fx.st.SaveQuote(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	fx.handle(t, quotedCheckout(t, "evt_tax", "cs_q", 174000+13920, 0, "usd", t0, &catalog.CheckoutDetails{QuoteID: "q_1", TaxCents: 13920}))
	s := fx.sub(t, "sub-cs_q")
	ln := s.Ledger.Find("purchase-cs_q")
	if s.Status != "active" || ln == nil || ln.AmountCents != 174000 || ln.PaidCents != 174000 || ln.TaxCents != 13920 {
		t.Fatalf("status %s, purchase line %+v", s.Status, ln)
	}
}

// asyncResult is the delayed method's result for session cs_q, at.
func asyncResult(t *testing.T, id, typ string, paid int64, at time.Time) event.Event {
	return providerEvent(t, id, typ, catalog.ProviderEvent{
		OccurredAt: at, SubscriptionID: "sub-cs_q", CheckoutSessionID: "cs_q", PaymentIntentID: "pi_cs_q",
		AmountCents: paid, Currency: "usd", Order: order("premium"), Checkout: &catalog.CheckoutDetails{QuoteID: "q_1"},
		Customer: &catalog.Customer{ProviderCustomerID: "cus_1", Email: "a@example.com"},
	})
}

// unpaidCompletion is cs_q completed with a delayed method (a bank debit):
// nothing collected yet.
func unpaidCompletion(t *testing.T, paid int64) event.Event {
	e := quotedCheckout(t, "evt_done", "cs_q", paid, 0, "usd", t0, nil)
	var pe catalog.ProviderEvent
	if err := e.DataAs(&pe); err != nil {
		t.Fatal(err)
	}
	pe.PaymentStatus = "unpaid"
	return providerEvent(t, "evt_done", catalog.CheckoutCompleted, pe)
}

// A delayed payment's result arrives days after the quote expired; it is
// judged by its completion, which met the expiry, so the subscription
// becomes active (not stuck pending, which would block every new checkout).
func TestAsyncPaymentDaysAfterTheQuoteExpiredSettlesItsCompletion(t *testing.T) {
	t.Parallel()
	fx := quotedFixture(t, QuotePolicy{Require: true})
	fx.handle(t, unpaidCompletion(t, 174000))
	if s := fx.sub(t, "sub-cs_q"); s.Status != subscription.Pending {
		t.Fatalf("after the unpaid completion: %s", s.Status)
	}
	late := t0.Add(72 * time.Hour) // the quote expired at t0+1h
	fx.handle(t, asyncResult(t, "evt_async", catalog.CheckoutAsyncPaymentSucceed, 174000, late))
	if s := fx.sub(t, "sub-cs_q"); s.Status != subscription.Active {
		t.Fatalf("after the async success: %s", s.Status)
	}
	if _, found, _ := fx.st.CheckoutRefusalOf(context.Background(), "cs_q"); found {
		t.Fatal("the async success was refused")
	}
	q, err := fx.st.Quote(context.Background(), nil, "q_1")
	if err != nil || q.Status != store.QuoteCompleted || !q.CompletedAt.Equal(t0) {
		t.Fatalf("quote status %q completed at %v, err %v", q.Status, q.CompletedAt, err)
	}
}

// The async result still pays the quote: paid below it, it is refused.
// And an async result of a completion that was refused is refused with the
// completion's reason, whatever it reports.
func TestAsyncPaymentIsRefusedBelowTheQuoteOrAfterARefusedCompletion(t *testing.T) {
	t.Parallel()
	late := t0.Add(72 * time.Hour)
	below := quotedFixture(t, QuotePolicy{Require: true})
	below.handle(t, unpaidCompletion(t, 174000))
	below.handle(t, asyncResult(t, "evt_async", catalog.CheckoutAsyncPaymentSucceed, 1000, late))
	if s := below.sub(t, "sub-cs_q"); s.Status != subscription.Pending {
		t.Fatalf("paid below the quote, status %s", s.Status)
	}
	if r, found, _ := below.st.CheckoutRefusalOf(context.Background(), "cs_q"); !found || r.Reason != quote.ReasonAmountMismatch {
		t.Fatalf("refusal %+v found %v", r, found)
	}

	refused := quotedFixture(t, QuotePolicy{Require: true})
	refused.handle(t, unpaidCompletion(t, 100))
	refused.handle(t, asyncResult(t, "evt_async", catalog.CheckoutAsyncPaymentSucceed, 174000, late))
	if _, err := refused.st.Subscription(context.Background(), nil, "sub-cs_q"); !store.IsNotFound(err) {
		t.Fatalf("provisioned after a refused completion: err = %v", err)
	}
	r, found, _ := refused.st.CheckoutRefusalOf(context.Background(), "cs_q")
	if !found || r.Reason != quote.ReasonAmountMismatch || r.ProviderEventID != "evt_async" {
		t.Fatalf("refusal %+v found %v", r, found)
	}
	if q, _ := refused.st.Quote(context.Background(), nil, "q_1"); q.Status != store.QuoteRefused || q.Refusal != quote.ReasonAmountMismatch {
		t.Fatalf("quote status %q refusal %q", q.Status, q.Refusal)
	}
}

// An async result that overtook its completion waits for it (a retry), so
// it is judged by the completion's verdict and not by the expired quote.
func TestAsyncPaymentBeforeItsCompletionIsRetried(t *testing.T) {
	t.Parallel()
	fx := quotedFixture(t, QuotePolicy{Require: true})
	err := fx.f.Handle(context.Background(), asyncResult(t, "evt_async", catalog.CheckoutAsyncPaymentSucceed, 174000, t0.Add(72*time.Hour)))
	if err == nil || failure.IsPermanent(err) {
		t.Fatalf("err = %v, want a transient error", err)
	}
	if _, err := fx.st.Subscription(context.Background(), nil, "sub-cs_q"); !store.IsNotFound(err) {
		t.Fatalf("provisioned: err = %v", err)
	}
}

// A quote whose completion was accepted before verdicts were kept on
// quotes (status still session) is known accepted by its subscription.
func TestAsyncPaymentOfACompletionAcceptedBeforeVerdictsWereKept(t *testing.T) {
	t.Parallel()
	fx := quotedFixture(t, QuotePolicy{Require: true})
	fx.handle(t, unpaidCompletion(t, 174000))
	q, err := fx.st.Quote(context.Background(), nil, "q_1")
	if err != nil {
		t.Fatal(err)
	}
	q.Status, q.CompletedAt = store.QuoteSession, time.Time{} // as an older payment-result left it
	if err := fx.st.SaveQuote(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	fx.handle(t, asyncResult(t, "evt_async", catalog.CheckoutAsyncPaymentSucceed, 174000, t0.Add(72*time.Hour)))
	if s := fx.sub(t, "sub-cs_q"); s.Status != subscription.Active {
		t.Fatalf("status %s", s.Status)
	}
}

// A quote whose completion was refused before verdicts were kept on quotes
// (status still session, the refusal only in checkout_refusals) refuses
// its async result at once, with the completion's reason, rather than
// retrying it until the attempts run out.
func TestAsyncPaymentOfACompletionRefusedBeforeVerdictsWereKept(t *testing.T) {
	t.Parallel()
	fx := quotedFixture(t, QuotePolicy{Require: true})
	fx.handle(t, unpaidCompletion(t, 100))
	q, err := fx.st.Quote(context.Background(), nil, "q_1")
	if err != nil {
		t.Fatal(err)
	}
	q.Status, q.Refusal = store.QuoteSession, "" // as an older payment-result left it
	if err := fx.st.SaveQuote(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	if err := fx.f.Handle(context.Background(), asyncResult(t, "evt_async", catalog.CheckoutAsyncPaymentSucceed, 174000, t0.Add(72*time.Hour))); err != nil {
		t.Fatalf("err = %v, want the result refused and acknowledged", err)
	}
	if _, err := fx.st.Subscription(context.Background(), nil, "sub-cs_q"); !store.IsNotFound(err) {
		t.Fatalf("provisioned after a refused completion: err = %v", err)
	}
	if r, found, _ := fx.st.CheckoutRefusalOf(context.Background(), "cs_q"); !found || r.Reason != quote.ReasonAmountMismatch {
		t.Fatalf("refusal %+v found %v", r, found)
	}
}
