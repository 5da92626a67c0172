package e2e

import (
	"crypto/ed25519"
	"fmt"
	"fulfillment/shared/adapters/docstore"
	"testing"
	"time"

	"fulfillment/functions/provisioning"
	"fulfillment/infra/demo"
	"fulfillment/infra/localstack"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/license"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/testsupport/testdouble"
)

func TestPurchaseIsActivatedProvisionedAndInCRM(t *testing.T) {
	p := purchase(t)
	mustAccept(t, p.CheckoutCompleted(uniq("evt"), time.Now()))

	sub := waitSubscription(t, p.SubscriptionID(), func(s *subscription.Subscription) bool { return s.Status == subscription.Active })
	if sub.Order.Seats != 10 || sub.Order.PlanCode != "premium" || !sub.TermEnd.Equal(sub.TermStart.AddDate(1, 0, 0)) {
		t.Fatalf("subscription %+v", sub)
	}
	eventually(t, 20*time.Second, "GitLab provisioning call", func() (bool, string) {
		calls := callsTo(stack.GitLab.Calls(), gitlabPath(p.NamespaceID))
		return len(calls) == 1, fmt.Sprint(len(calls), " calls")
	})
	bp := baseProduct(callsTo(stack.GitLab.Calls(), gitlabPath(p.NamespaceID))[0])
	if bp["plan_code"] != "premium" || bp["seats"] != float64(10) || bp["end_date"] != sub.TermEnd.Format(time.DateOnly) {
		t.Errorf("GitLab got base_product %v", bp)
	}
	eventually(t, 20*time.Second, "Salesforce subscription upsert", func() (bool, string) {
		rec, ok := stack.Salesforce.Record("Fulfillment_Subscription__c", p.SubscriptionID())
		return ok && rec["Status__c"] == "active" && rec["Seats__c"] == float64(10), fmt.Sprint(rec)
	})
	if _, ok := stack.Salesforce.Record("Account", p.CustomerID); !ok {
		t.Error("no Salesforce account upserted for the customer")
	}
	var ent struct {
		Status  provisioning.EntitlementStatus `firestore:"status"`
		Version int64                          `firestore:"version"`
	}
	eventually(t, 10*time.Second, "entitlement recorded", func() (bool, string) {
		err := stack.Store.Get(background, nil, store.Entitlements, p.SubscriptionID(), &ent)
		return err == nil && ent.Status == provisioning.EntitlementActive && ent.Version == sub.Version, fmt.Sprint(ent, err)
	})
	history, err := stack.Store.SubscriptionHistory(background, p.SubscriptionID())
	if err != nil || len(history) != 1 || history[0].To != "active" || history[0].Event != catalog.SubscriptionActivated {
		t.Fatalf("history = %+v, %v", history, err)
	}
}

func TestSelfManagedPurchaseGetsAVerifiableLicense(t *testing.T) {
	p := purchase(t)
	p.NamespaceID, p.InstanceID, p.Plan, p.Seats = "", uniq("instance"), "ultimate", 25
	mustAccept(t, p.CheckoutCompleted(uniq("evt"), time.Now()))
	sub := waitSubscription(t, p.SubscriptionID(), func(s *subscription.Subscription) bool { return s.Status == subscription.Active })

	var signed license.Signed
	id := fmt.Sprintf("lic-%s-v%d", sub.ID, sub.Version)
	eventually(t, 20*time.Second, "license issued", func() (bool, string) {
		err := stack.Store.Get(background, nil, store.Licenses, id, &signed)
		return err == nil, fmt.Sprint(err)
	})
	key, err := license.KeyFromSeed(localstack.LicenseSeed)
	if err != nil {
		t.Fatal(err)
	}
	l, err := license.Verify(signed, key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if l.InstanceID != p.InstanceID || l.Seats != 25 || l.PlanCode != "ultimate" || l.ExpiresOn != sub.TermEnd.Format(time.DateOnly) {
		t.Errorf("license %+v", l)
	}
}

func TestTheSameEventTwiceGivesOneSubscriptionAndOneProvisioningCall(t *testing.T) {
	p := purchase(t)
	payload := p.CheckoutCompleted(uniq("evt"), time.Now())
	mustAccept(t, payload)
	if r := send(t, payload); r.Status != 200 || r.Body != `{"status":"duplicate"}` {
		t.Fatalf("second delivery answered %d %s", r.Status, r.Body)
	}
	sub := waitSubscription(t, p.SubscriptionID(), func(s *subscription.Subscription) bool { return s.Status == subscription.Active })

	// Pub/Sub delivers at least once: publish the same provider event again
	// behind the webhook's back; payment-result must dedupe it.
	var rec struct {
		Raw string `firestore:"raw"`
	}
	if err := stack.Store.Get(background, nil, store.WebhookEvents, eventID(t, payload), &rec); err != nil {
		t.Fatal(err)
	}
	again, err := cloudevent.New(background, eventID(t, payload), catalog.SourceCheckoutWebhook, catalog.CheckoutCompleted, sub.ID,
		catalog.ProviderEvent{Provider: "stripe", ProviderEventID: eventID(t, payload), SubscriptionID: sub.ID})
	if err != nil {
		t.Fatal(err)
	}
	if err := stack.PubSub.Publish(background, catalog.TopicProviderEvents, again); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "first provisioning call", func() (bool, string) {
		return len(callsTo(stack.GitLab.Calls(), gitlabPath(p.NamespaceID))) >= 1, ""
	})
	// Give the redelivered event time to travel the whole pipeline, then count.
	marker := purchase(t)
	mustAccept(t, marker.CheckoutCompleted(uniq("evt"), time.Now()))
	eventually(t, 20*time.Second, "a later purchase provisioned", func() (bool, string) {
		return len(callsTo(stack.GitLab.Calls(), gitlabPath(marker.NamespaceID))) == 1, ""
	})
	if n := len(callsTo(stack.GitLab.Calls(), gitlabPath(p.NamespaceID))); n != 1 {
		t.Fatalf("%d provisioning calls for one purchase, want 1", n)
	}
	now, err := stack.Store.Subscription(background, nil, sub.ID)
	if err != nil || now.Version != sub.Version {
		t.Fatalf("subscription changed by a duplicate: %+v %v", now, err)
	}
}

func eventID(t *testing.T, payload []byte) string {
	t.Helper()
	var e struct {
		ID string `json:"id"`
	}
	if err := jsonUnmarshal(payload, &e); err != nil {
		t.Fatal(err)
	}
	return e.ID
}

func TestAPaymentFailureBurstRaisesExactlyOneAlert(t *testing.T) {
	p := purchase(t)
	mustAccept(t, p.CheckoutCompleted(uniq("evt"), time.Now()))
	sub := waitSubscription(t, p.SubscriptionID(), func(s *subscription.Subscription) bool { return s.Status == subscription.Active })

	burst := alertThreshold + 4
	for i := 0; i < burst; i++ {
		mustAccept(t, demo.InvoiceEvent(uniq("evt"), uniq("in"), p.CustomerID, sub.ID, sub.TermEnd, false, time.Now()))
	}
	eventually(t, 30*time.Second, "every failure counted", func() (bool, string) {
		docs, err := stack.Store.DB.Query(background, docstore.Query{Collection: "payment_failures", Where: []docstore.Filter{{Field: "subscription_id", Op: docstore.Eq, Value: sub.ID}}})
		return err == nil && len(docs) == burst, fmt.Sprint(len(docs), err)
	})
	// As long as the counting: under make test's load the alert was once
	// later than 10 s (an evaluation that fails is redelivered after a
	// backoff, and another claimant waits out a live claim).
	eventually(t, 30*time.Second, "one Slack and one PagerDuty alert", func() (bool, string) {
		return len(stack.Slack.Calls()) == 1 && len(stack.PagerDuty.Calls()) == 1,
			fmt.Sprint(len(stack.Slack.Calls()), " slack, ", len(stack.PagerDuty.Calls()), " pagerduty")
	})
	pd := stack.PagerDuty.Calls()[0].Body
	if pd["event_action"] != "trigger" || pd["dedup_key"] == "" || pd["routing_key"] != localstack.PagerDutyKey {
		t.Errorf("PagerDuty event %v", pd)
	}
	// The failures moved the subscription to past_due once.
	waitSubscription(t, sub.ID, func(s *subscription.Subscription) bool { return s.Status == subscription.PastDue })
	if len(stack.Slack.Calls()) != 1 || len(stack.PagerDuty.Calls()) != 1 {
		t.Fatalf("alerts after the burst settled: %d slack, %d pagerduty", len(stack.Slack.Calls()), len(stack.PagerDuty.Calls()))
	}
}

func TestRenewalTickChargesEachDueSubscriptionOnceAndPaymentExtendsTheTerm(t *testing.T) {
	var subs []*subscription.Subscription
	var buys []demo.Purchase
	for range 2 {
		p := purchase(t)
		mustAccept(t, p.CheckoutCompleted(uniq("evt"), time.Now()))
		buys = append(buys, p)
		subs = append(subs, waitSubscription(t, p.SubscriptionID(), func(s *subscription.Subscription) bool { return s.Status == subscription.Active }))
	}
	for range 2 { // Scheduler may fire twice: nobody is charged twice
		if _, err := demo.Tick(background, stack.PubSub); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range subs {
		waitSubscription(t, s.ID, func(n *subscription.Subscription) bool { return n.RenewalPendingFor.Equal(s.TermEnd) })
	}
	for _, s := range subs {
		key := fmt.Sprintf("renewal-%s-%s-invoice", s.ID, s.TermEnd.Format(time.DateOnly))
		created := 0
		for _, c := range callsTo(stack.Stripe.Calls(), "/v1/invoices") {
			if c.Method == "POST" && c.Path == "/v1/invoices" && c.Headers["Idempotency-Key"] == key && charged(c) {
				created++
				if c.Body["metadata[subscription_id]"] != s.ID || c.Body["customer"] == "" {
					t.Errorf("invoice body %v", c.Body)
				}
			}
		}
		if created != 1 {
			t.Fatalf("%s: %d invoices created with key %s, want 1", s.ID, created, key)
		}
		if pays := countPays(stack.Stripe.Calls(), fmt.Sprintf("renewal-%s-%s-pay", s.ID, s.TermEnd.Format(time.DateOnly))); pays != 1 {
			t.Fatalf("%s: %d payments, want 1", s.ID, pays)
		}
	}

	// Stripe reports the payment through the webhook: the term is extended
	// and provisioning follows with the new end date.
	s, p := subs[0], buys[0]
	mustAccept(t, demo.InvoiceEvent(uniq("evt"), uniq("in"), p.CustomerID, s.ID, s.TermEnd, true, time.Now()))
	renewed := waitSubscription(t, s.ID, func(n *subscription.Subscription) bool { return n.TermStart.Equal(s.TermEnd) })
	if renewed.Status != subscription.Active || !renewed.TermEnd.Equal(s.TermEnd.AddDate(1, 0, 0)) || !renewed.RenewalPendingFor.IsZero() {
		t.Fatalf("renewed subscription %+v", renewed)
	}
	eventually(t, 20*time.Second, "provisioning updated with the new term", func() (bool, string) {
		calls := callsTo(stack.GitLab.Calls(), gitlabPath(p.NamespaceID))
		if len(calls) != 2 {
			return false, fmt.Sprint(len(calls), " calls")
		}
		return baseProduct(calls[1])["end_date"] == renewed.TermEnd.Format(time.DateOnly), fmt.Sprint(baseProduct(calls[1]))
	})
}

func countPays(calls []testdouble.Call, key string) int {
	n := 0
	for _, c := range calls {
		if c.Method == "POST" && c.Headers["Idempotency-Key"] == key && charged(c) {
			n++
		}
	}
	return n
}

// charged reports whether a call reached Stripe and succeeded: a replay of a
// stored answer for the same idempotency key, or a 409 while the first
// request with that key was in flight, charges nothing.
// charged says Stripe executed the call (a decline, 402, is its answer too),
// not replayed from its idempotency store.
func charged(c testdouble.Call) bool {
	return !c.Replayed && (c.Status < 300 || c.Status == 402)
}
