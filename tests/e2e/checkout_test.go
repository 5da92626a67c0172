package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"fulfillment/infra/demo"
	"fulfillment/infra/localstack"
	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/quote"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/testsupport/emulator"
	"fulfillment/shared/testsupport/testdouble"
)

// postCheckout calls the checkout API as the local GitLab.com caller.
func postCheckout(t *testing.T, path, key string, body any) (int, map[string]any) {
	t.Helper()
	return checkoutAPI(t, stack, http.MethodPost, path, stack.CheckoutToken(), key, body)
}

// checkoutAPI calls stack s's checkout function with an ID token (none
// when token is empty) and an idempotency key (none when empty).
func checkoutAPI(t *testing.T, s *localstack.Stack, method, path, token, key string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.URLs["checkout"]+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// buyThroughAPI creates a checkout of plan for namespace ns on stack s and
// returns its stored quote.
func buyThroughAPI(t *testing.T, s *localstack.Stack, ns, plan string, seats int) store.Quote {
	t.Helper()
	return buy(t, s, purchaseBody(ns, plan, seats))
}

// purchaseBody is a POST /checkouts body for a year of plan.
func purchaseBody(ns, plan string, seats int) map[string]any {
	return map[string]any{
		"namespace_id": ns, "plan_code": plan, "seats": seats, "term_months": 12,
		"buyer":       map[string]any{"name": "E2E Buyer", "email": "buyer@example.com", "company": "E2E Inc"},
		"success_url": "https://gitlab.example/ok", "cancel_url": "https://gitlab.example/cancel",
	}
}

// buy posts body to stack s's checkout and returns the stored quote.
func buy(t *testing.T, s *localstack.Stack, body map[string]any) store.Quote {
	t.Helper()
	status, ans := checkoutAPI(t, s, http.MethodPost, "/checkouts", s.CheckoutToken(), uniq("order"), body)
	if status != http.StatusCreated {
		t.Fatalf("checkout = %d %v", status, ans)
	}
	q, err := s.Store.Quote(background, nil, ans["quote_id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// completedEvent is Stripe's checkout.session.completed eventID for
// sessionID carrying quote q's metadata, paid amount in currency, at.
func completedEvent(eventID string, q store.Quote, sessionID string, amount int64, currency string, at time.Time) []byte {
	return stripe.NewEvent(eventID, "checkout.session.completed", at, quoteSession(q, sessionID, amount, currency))
}

// discountedEvent is q's own session completed with Stripe's discount
// (total_details.amount_discount) taken off the quote's total.
func discountedEvent(eventID string, q store.Quote, discount int64, at time.Time) []byte {
	cs := quoteSession(q, q.SessionID, q.TotalCents-discount, "usd")
	cs["total_details"] = map[string]any{"amount_discount": discount, "amount_tax": 0, "amount_shipping": 0}
	return stripe.NewEvent(eventID, "checkout.session.completed", at, cs)
}

// quoteSession is a paid checkout.session object carrying q's metadata.
func quoteSession(q store.Quote, sessionID string, amount int64, currency string) map[string]any {
	cs := stripe.CheckoutSession(sessionID, q.CustomerID, "buyer@example.com", "paid", amount, stripe.OrderMetadata(q.ID, q.Order))
	cs["currency"] = currency
	return cs
}

// A purchase made through the checkout API: the quote's lines reach Stripe
// in the session request, the signed completion for that session activates
// and provisions it, a forged session copying its quote id is refused, and
// the renewal is charged off-session with the card the checkout saved.
func TestCheckoutAPIToProvisionedSubscriptionRenewedWithTheSavedCard(t *testing.T) {
	ns := uniq("ns")
	status, ans := postCheckout(t, "/checkouts", uniq("order"), map[string]any{
		"namespace_id": ns, "plan_code": "premium", "seats": 7, "compute_minutes": 2000, "term_months": 12,
		"buyer":       map[string]any{"name": "E2E Buyer", "email": "buyer@example.com", "company": "E2E Inc"},
		"success_url": "https://gitlab.example/ok", "cancel_url": "https://gitlab.example/cancel",
	})
	if status != http.StatusCreated {
		t.Fatalf("checkout = %d %v", status, ans)
	}
	qid := ans["quote_id"].(string)
	q, err := stack.Store.Quote(background, nil, qid)
	if err != nil {
		t.Fatal(err)
	}
	wantTotal := int64(7*34800 + 2*1000)
	if q.TotalCents != wantTotal || q.SessionID == "" || q.CustomerID == "" {
		t.Fatalf("quote = %+v", q)
	}

	// What stripe-mock was asked for.
	var session *testdouble.Call
	for _, c := range stack.Stripe.Calls() {
		if c.Method == "POST" && c.Path == "/v1/checkout/sessions" && c.Headers["Idempotency-Key"] == "checkout-session-"+qid {
			session = &c
		}
	}
	if session == nil {
		t.Fatal("no checkout session request for the quote")
	}
	for k, v := range map[string]any{
		"mode": "payment", "customer": q.CustomerID, "metadata[quote_id]": qid, "metadata[namespace_id]": ns,
		"payment_intent_data[setup_future_usage]": "off_session",
		"line_items[0][price_data][unit_amount]":  "34800", "line_items[0][quantity]": "7",
		"line_items[1][price_data][unit_amount]": "1000", "line_items[1][quantity]": "2",
		"line_items[0][price_data][currency]":           "usd",
		"line_items[0][price_data][product_data][name]": "Premium, 12 months, per seat",
		"line_items[1][price_data][product_data][name]": "Compute minutes, 1,000-minute packs, 12 months",
		"client_reference_id":                           qid, "expires_at": fmt.Sprint(q.ExpiresAt.Unix()),
	} {
		if session.Body[k] != v {
			t.Errorf("session request %s = %v, want %v", k, session.Body[k], v)
		}
	}
	customers := 0
	for _, c := range stack.Stripe.Calls() {
		if c.Method == "POST" && c.Path == "/v1/customers" && c.Headers["Idempotency-Key"] == "customer-"+qid {
			customers++
			if c.Body["email"] != "buyer@example.com" || c.Body["name"] != "E2E Buyer" || c.Body["metadata[company]"] != "E2E Inc" {
				t.Errorf("customer request %v", c.Body)
			}
		}
	}
	if customers != 1 {
		t.Fatalf("customer creations for the quote = %d", customers)
	}

	completion := func(sessionID string, amount int64) []byte {
		return completedEvent(uniq("evt"), q, sessionID, amount, "usd", time.Now())
	}
	// A session we did not create, carrying the quote's id: refused, recorded.
	forged := uniq("cs_forged")
	mustAccept(t, completion(forged, wantTotal))
	eventually(t, 20*time.Second, "forged session refused", func() (bool, string) {
		r, found, err := stack.Store.CheckoutRefusalOf(background, forged)
		return found && r.Reason == quote.ReasonForeignSession, fmt.Sprint(r, err)
	})
	if _, err := stack.Store.Subscription(background, nil, stripe.SubscriptionIDForCheckout(forged)); !store.IsNotFound(err) {
		t.Fatalf("forged session provisioned: %v", err)
	}
	// failed-payment-alerting pages on the refusal. The alert doubles are
	// shared with the other tests, which count every call: wait for this
	// page, then clear them.
	eventually(t, 20*time.Second, "the refusal paged", func() (bool, string) {
		for _, c := range stack.PagerDuty.Calls() {
			if strings.Contains(fmt.Sprint(c.Body), forged) {
				return true, ""
			}
		}
		return false, fmt.Sprint(len(stack.PagerDuty.Calls()), " pagerduty calls")
	})
	eventually(t, 20*time.Second, "the refusal on Slack", func() (bool, string) {
		return len(stack.Slack.Calls()) > 0, "no Slack call"
	})
	stack.PagerDuty.Reset()
	stack.Slack.Reset()

	// The real completion: active and provisioned.
	mustAccept(t, completion(q.SessionID, wantTotal))
	subID := stripe.SubscriptionIDForCheckout(q.SessionID)
	sub := waitSubscription(t, subID, func(s *subscription.Subscription) bool { return s.Status == subscription.Active })
	if sub.SavedPaymentFrom != stripe.PaymentIntentForCheckout(q.SessionID) {
		t.Fatalf("saved payment from %q", sub.SavedPaymentFrom)
	}
	eventually(t, 20*time.Second, "provisioned on GitLab", func() (bool, string) {
		calls := callsTo(stack.GitLab.Calls(), gitlabPath(ns))
		if len(calls) == 0 {
			return false, "no call"
		}
		bp := baseProduct(calls[0])
		return bp["plan_code"] == "premium" && bp["seats"] == float64(7), fmt.Sprint(bp)
	})

	// The renewal charges the card the checkout saved, off-session.
	stack.Stripe.SavePaymentMethod(stripe.PaymentIntentForCheckout(q.SessionID), "pm_card_e2e")
	if _, err := demo.Tick(background, stack.PubSub); err != nil {
		t.Fatal(err)
	}
	waitSubscription(t, subID, func(n *subscription.Subscription) bool { return n.RenewalPendingFor.Equal(sub.TermEnd) })
	term := sub.TermEnd.Format(time.DateOnly)
	var defaults, invoices, items, pays int
	for _, c := range stack.Stripe.Calls() {
		switch {
		case c.Method == "POST" && c.Path == "/v1/customers/"+q.CustomerID && charged(c):
			// The checkout's card becomes the customer's default at the first
			// charge, before its invoice is created (docs/checkout.md says why).
			defaults++
			if c.Body["invoice_settings[default_payment_method]"] != "pm_card_e2e" || invoices != 0 {
				t.Errorf("customer update %v after %d invoices", c.Body, invoices)
			}
		case c.Method == "POST" && c.Path == "/v1/invoiceitems" && c.Headers["Idempotency-Key"] == fmt.Sprintf("renewal-%s-%s-item", subID, term) && charged(c):
			items++
			if c.Body["amount"] != fmt.Sprint(q.TotalCents) || c.Body["currency"] != "usd" {
				t.Errorf("renewal item %v, want the quote's %d usd", c.Body, q.TotalCents)
			}
		case c.Method == "POST" && c.Path == "/v1/invoices" && c.Headers["Idempotency-Key"] == fmt.Sprintf("renewal-%s-%s-invoice", subID, term) && charged(c):
			invoices++
			if c.Body["default_payment_method"] != "pm_card_e2e" || c.Body["collection_method"] != "charge_automatically" {
				t.Errorf("renewal invoice %v", c.Body)
			}
		case c.Method == "POST" && c.Headers["Idempotency-Key"] == fmt.Sprintf("renewal-%s-%s-pay", subID, term) && charged(c):
			pays++
			if c.Body["payment_method"] != "pm_card_e2e" || c.Body["off_session"] != "true" {
				t.Errorf("renewal payment %v", c.Body)
			}
		}
	}
	if defaults != 1 || invoices != 1 || items != 1 || pays != 1 {
		t.Fatalf("renewal: %d default-method updates, %d invoices, %d items, %d payments; want 1 each", defaults, invoices, items, pays)
	}
}

// Completed checkouts that do not pay their quote, on a stack with the
// production quote policy (CHECKOUT_REQUIRE_QUOTE=true, one allowed payment
// link): below the quote, in another currency, after the quote's expiry,
// with a discount the quote did not allow, a session we did not create
// carrying a quote's id, and a session with no quote at all. None is
// provisioned; each is recorded with its reason, dead-lettered by
// payment-result and paged; the quote shows the refusal. A quote made with
// a promotion code takes Stripe's discount, and a session from the allowed
// payment link is provisioned.
func TestBadCompletionsAreRefusedRecordedDeadLetteredAndPaged(t *testing.T) {
	const link = "plink_e2e_allowed"
	y := startClockedStack(t, localstack.Options{Project: emulator.NewProject("quotes"), Env: map[string]map[string]string{
		"payment-result": {"CHECKOUT_REQUIRE_QUOTE": "true", "CHECKOUT_PAYMENT_LINKS": link},
	}})
	s := y.s
	quoteless := demo.Purchase{SessionID: uniq("cs_plain"), CustomerID: uniq("cus"), Email: "buyer@example.com",
		Plan: "premium", Seats: 3, NamespaceID: uniq("ns"), AutoRenew: true, Paid: true}
	cases := []struct {
		name     string
		reason   string
		ownQuote bool // the refusal is of the quote's own session, which the quote records
		event    func(id string, q store.Quote) (session string, payload []byte)
	}{
		{"below the quote", quote.ReasonAmountMismatch, true, func(id string, q store.Quote) (string, []byte) {
			return q.SessionID, completedEvent(id, q, q.SessionID, q.TotalCents-1, "usd", y.now())
		}},
		{"another currency", quote.ReasonCurrencyMismatch, true, func(id string, q store.Quote) (string, []byte) {
			return q.SessionID, completedEvent(id, q, q.SessionID, q.TotalCents, "eur", y.now())
		}},
		{"after the quote's expiry", quote.ReasonExpired, true, func(id string, q store.Quote) (string, []byte) {
			return q.SessionID, completedEvent(id, q, q.SessionID, q.TotalCents, "usd", q.ExpiresAt.Add(time.Minute))
		}},
		{"a discount the quote did not allow", quote.ReasonUnquotedDiscount, true, func(id string, q store.Quote) (string, []byte) {
			return q.SessionID, discountedEvent(id, q, 5000, y.now())
		}},
		{"a session we did not create", quote.ReasonForeignSession, false, func(id string, q store.Quote) (string, []byte) {
			forged := uniq("cs_forged")
			return forged, completedEvent(id, q, forged, q.TotalCents, "usd", y.now())
		}},
		{"no quote", quote.ReasonNoQuote, false, func(id string, _ store.Quote) (string, []byte) {
			return quoteless.SessionID, quoteless.CheckoutCompleted(id, y.now())
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := buyThroughAPI(t, s, uniq("ns"), "premium", 4)
			id := uniq("evt")
			session, payload := c.event(id, q)
			y.webhook(payload)
			eventually(t, 30*time.Second, "refusal recorded", func() (bool, string) {
				r, found, err := s.Store.CheckoutRefusalOf(background, session)
				return found && r.Reason == c.reason && r.ProviderEventID == id, fmt.Sprint(r, err)
			})
			dl := deadLetterOf(t, s, id)
			if dl.Consumer != "payment-result" || !strings.Contains(dl.Reason, c.reason) || !strings.Contains(dl.Reason, session) {
				t.Fatalf("dead letter %+v", dl)
			}
			eventually(t, 30*time.Second, "paged", func() (bool, string) {
				for _, p := range s.PagerDuty.Calls() {
					if strings.Contains(fmt.Sprint(p.Body), session) && strings.Contains(fmt.Sprint(p.Body), c.reason) {
						return true, ""
					}
				}
				return false, fmt.Sprint(len(s.PagerDuty.Calls()), " PagerDuty calls")
			})
			if _, err := s.Store.Subscription(background, nil, stripe.SubscriptionIDForCheckout(session)); !store.IsNotFound(err) {
				t.Fatalf("provisioned: %v", err)
			}
			for _, ns := range []string{q.Order.NamespaceID, quoteless.NamespaceID} {
				if n := len(callsTo(s.GitLab.Calls(), gitlabPath(ns))); n != 0 {
					t.Fatalf("%d GitLab calls for %s", n, ns)
				}
			}
			status, shown := checkoutAPI(t, s, http.MethodGet, "/checkouts/"+q.ID, s.CheckoutToken(), "", nil)
			want := map[bool]string{true: store.QuoteRefused, false: store.QuoteSession}[c.ownQuote]
			if status != http.StatusOK || shown["status"] != want || (c.ownQuote && shown["refusal"] != c.reason) {
				t.Fatalf("GET /checkouts/%s = %d %v, want status %s", q.ID, status, shown, want)
			}
		})
	}

	// A campaign's promotion code given to the API: Stripe's discount is
	// the quote's to allow, and the purchase is provisioned.
	s.Stripe.ActivatePromotionCode("E2E25", "promo_e2e25")
	promo := purchaseBody(uniq("ns"), "premium", 4)
	promo["promotion_code"] = "e2e25"
	pq := buy(t, s, promo)
	if pq.PromotionCodeID != "promo_e2e25" {
		t.Fatalf("quote with a promotion code = %+v", pq)
	}
	applied := 0
	for _, c := range s.Stripe.Calls() {
		if c.Path == "/v1/checkout/sessions" && c.Headers["Idempotency-Key"] == "checkout-session-"+pq.ID && c.Body["discounts[0][promotion_code]"] == "promo_e2e25" {
			applied++
		}
	}
	if applied != 1 {
		t.Fatalf("%d session requests applied the promotion code, want 1", applied)
	}
	y.webhook(discountedEvent(uniq("evt"), pq, pq.TotalCents/4, y.now()))
	eventually(t, 30*time.Second, "the discounted purchase active", func() (bool, string) {
		sub, err := s.Store.Subscription(background, nil, stripe.SubscriptionIDForCheckout(pq.SessionID))
		return err == nil && sub.Status == subscription.Active, fmt.Sprint(err)
	})

	// The documented way around the quote: an allowed payment link.
	linked := demo.Purchase{SessionID: uniq("cs_link"), CustomerID: uniq("cus"), Email: "buyer@example.com",
		Plan: "premium", Seats: 3, NamespaceID: uniq("ns"), AutoRenew: true, Paid: true}
	cs := stripe.CheckoutSession(linked.SessionID, linked.CustomerID, linked.Email, "paid", linked.Amount(), linked.Metadata())
	cs["payment_link"] = link
	y.webhook(stripe.NewEvent(uniq("evt"), "checkout.session.completed", y.now(), cs))
	eventually(t, 30*time.Second, "the payment link's purchase active", func() (bool, string) {
		sub, err := s.Store.Subscription(background, nil, linked.SubscriptionID())
		return err == nil && sub.Status == subscription.Active, fmt.Sprint(err)
	})
}

// deadLetterOf waits for the dead letter of the event with CloudEvent id.
func deadLetterOf(t *testing.T, s *localstack.Stack, id string) store.DeadLetter {
	t.Helper()
	var dl store.DeadLetter
	eventually(t, 30*time.Second, "dead letter of "+id, func() (bool, string) {
		docs, err := s.Store.DB.Query(background, docstore.Query{Collection: store.DeadLetters, Where: []docstore.Filter{{Field: "event_id", Op: docstore.Eq, Value: id}}})
		if err != nil || len(docs) != 1 {
			return false, fmt.Sprint(len(docs), " dead letters ", err)
		}
		return docs[0].DataTo(&dl) == nil, ""
	})
	return dl
}

// Bad requests to the deployed checkout function (its Setup from the
// environment: OIDC against the stack's issuer, the catalog, eligibility
// from Firestore): each a 4xx with a detail, and nothing behind it — no
// quote for its namespace and no Stripe customer or session asked for.
func TestCheckoutAPIRefusesBadInputAndStoresNothing(t *testing.T) {
	paid := purchase(t) // a namespace with an active subscription, through the pipeline
	mustAccept(t, paid.CheckoutCompleted(uniq("evt"), time.Now()))
	waitSubscription(t, paid.SubscriptionID(), func(s *subscription.Subscription) bool { return s.Status == subscription.Active })

	good := stack.CheckoutToken()
	cases := []struct {
		name  string
		token string
		edit  func(map[string]any)
		want  int
	}{
		{"unknown plan", good, func(p map[string]any) { p["plan_code"] = "gold" }, http.StatusUnprocessableEntity},
		{"zero seats", good, func(p map[string]any) { p["seats"] = 0 }, http.StatusUnprocessableEntity},
		{"seats above the catalog's maximum", good, func(p map[string]any) { p["seats"] = catalog.MaxSeats + 1 }, http.StatusUnprocessableEntity},
		{"no buyer e-mail", good, func(p map[string]any) { delete(p["buyer"].(map[string]any), "email") }, http.StatusBadRequest},
		{"a namespace with an active subscription", good, func(p map[string]any) { p["namespace_id"] = paid.NamespaceID }, http.StatusConflict},
		{"no token", "", nil, http.StatusUnauthorized},
		{"a forged token", stack.OIDC.Forged(localstack.CheckoutCaller, localstack.CheckoutAudience), nil, http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			email := uniq("buyer") + "@example.com"
			body := map[string]any{
				"namespace_id": uniq("ns"), "plan_code": "premium", "seats": 5, "term_months": 12,
				"buyer":       map[string]any{"name": "E2E Buyer", "email": email},
				"success_url": "https://gitlab.example/ok", "cancel_url": "https://gitlab.example/cancel",
			}
			if c.edit != nil {
				c.edit(body)
			}
			ns := body["namespace_id"].(string)
			status, ans := checkoutAPI(t, stack, http.MethodPost, "/checkouts", c.token, uniq("order"), body)
			if status != c.want || ans["detail"] == nil || ans["detail"] == "" {
				t.Fatalf("status = %d %v, want %d with a detail", status, ans, c.want)
			}
			if n := quotesFor(t, ns); n != 0 {
				t.Fatalf("%d quotes stored for %s", n, ns)
			}
			for _, call := range stack.Stripe.Calls() {
				if b := fmt.Sprint(call.Body); (call.Path == "/v1/customers" || call.Path == "/v1/checkout/sessions") &&
					(strings.Contains(b, email) || (c.want != http.StatusConflict && strings.Contains(b, ns))) {
					t.Fatalf("Stripe asked for %s: %v", call.Path, call.Body)
				}
			}
		})
	}
	// The look for quotes finds one when there is one.
	if q := buyThroughAPI(t, stack, uniq("ns"), "premium", 5); quotesFor(t, q.Order.NamespaceID) != 1 {
		t.Fatal("the quote of a good request is not found by its namespace")
	}
}

// quotesFor counts the stack's quotes for namespace ns.
func quotesFor(t *testing.T, ns string) int {
	t.Helper()
	docs, err := stack.Store.DB.Query(background, docstore.Query{Collection: store.Quotes,
		Where: []docstore.Filter{{Field: "order.namespace_id", Op: docstore.Eq, Value: ns}}})
	if err != nil {
		t.Fatal(err)
	}
	return len(docs)
}

// A delayed payment method (a bank debit) completes the session unpaid and
// succeeds three days later, long after the quote's hour: the result is
// judged by its completion, so the subscription goes from pending to
// active and is provisioned, and the quote shows the completion accepted.
func TestDelayedPaymentDaysAfterTheQuoteExpiredActivates(t *testing.T) {
	ns := uniq("ns")
	q := buyThroughAPI(t, stack, ns, "premium", 3)
	at := time.Now()
	unpaid := quoteSession(q, q.SessionID, q.TotalCents, "usd")
	unpaid["payment_status"] = "unpaid"
	mustAccept(t, stripe.NewEvent(uniq("evt"), "checkout.session.completed", at, unpaid))
	subID := stripe.SubscriptionIDForCheckout(q.SessionID)
	waitSubscription(t, subID, func(s *subscription.Subscription) bool { return s.Status == subscription.Pending })
	if n := len(callsTo(stack.GitLab.Calls(), gitlabPath(ns))); n != 0 {
		t.Fatalf("%d GitLab calls before the payment", n)
	}

	later := at.Add(72 * time.Hour)
	if !later.After(q.ExpiresAt) {
		t.Fatalf("the result at %v is not after the quote's expiry %v", later, q.ExpiresAt)
	}
	mustAccept(t, stripe.NewEvent(uniq("evt"), "checkout.session.async_payment_succeeded", later, quoteSession(q, q.SessionID, q.TotalCents, "usd")))
	waitSubscription(t, subID, func(s *subscription.Subscription) bool { return s.Status == subscription.Active })
	eventually(t, 20*time.Second, "provisioned on GitLab", func() (bool, string) {
		calls := callsTo(stack.GitLab.Calls(), gitlabPath(ns))
		return len(calls) == 1 && baseProduct(calls[0])["plan_code"] == "premium", fmt.Sprint(len(calls), " calls")
	})
	if _, found, _ := stack.Store.CheckoutRefusalOf(background, q.SessionID); found {
		t.Fatal("the delayed payment was refused")
	}
	if status, shown := checkoutAPI(t, stack, http.MethodGet, "/checkouts/"+q.ID, stack.CheckoutToken(), "", nil); status != http.StatusOK || shown["status"] != store.QuoteCompleted {
		t.Fatalf("GET /checkouts/%s = %d %v", q.ID, status, shown)
	}
}
