package docstoretest

import (
	"fmt"
	"testing"
	"time"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/subscription"
)

// RunRepositories runs the repositories' queries and read-modify-writes
// against a fresh store from open: the queries are written once over the
// port, and this shows each gives the same answer on every adapter.
func RunRepositories(t *testing.T, open func(t *testing.T) docstore.DB) {
	for _, c := range RepositoryCases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			c.Run(t, open(t))
		})
	}
}

// RepositoryCases are the repository behaviours every adapter must give.
var RepositoryCases = []Case{
	{"DueReviewsInOrderAndPages", dueReviews},
	{"SubscriptionsWhereNestedField", subscriptionsWhere},
	{"UpdateSubscriptionKeepsOneHistoryRecordPerCause", updateSubscription},
	{"WebhookEventCreatedOnceAndRedeliveriesCounted", webhookEvents},
	{"PaymentFailuresCountedByTime", paymentFailures},
	{"PaymentRefsFound", paymentRefs},
}

var base = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

func seedSub(t T, st *store.Store, id, namespace string, review *time.Time) {
	t.Helper()
	s := subscription.Subscription{ID: id, Status: subscription.Active, Version: 3, NextReviewAt: review,
		Order: catalog.Order{PlanCode: "premium", Seats: 5, NamespaceID: namespace, Deployment: catalog.DeploymentSaaS}}
	must(t, st.DB.Set(ctx, store.Subscriptions, id, s), "seed "+id)
}

func dueReviews(t T, db docstore.DB) {
	st := store.New(db)
	for i := range 7 {
		at := base.Add(time.Duration(i%3) * time.Hour)
		seedSub(t, st, fmt.Sprintf("s%d", i), "ns", &at)
	}
	seedSub(t, st, "never", "ns", nil)
	later := base.Add(48 * time.Hour)
	seedSub(t, st, "later", "ns", &later)
	var got []string
	var afterAt time.Time
	afterID := ""
	for range 10 {
		page, err := st.DueReviews(ctx, base.Add(3*time.Hour), afterAt, afterID, 3)
		must(t, err, "due reviews")
		for _, d := range page {
			got = append(got, d.SubscriptionID)
			if d.Version != 3 {
				t.Errorf("due %s has version %d, want 3", d.SubscriptionID, d.Version)
			}
			afterAt, afterID = d.ReviewAt, d.SubscriptionID
		}
		if len(page) < 3 {
			break
		}
	}
	if want := "[s0 s3 s6 s1 s4 s2 s5]"; fmt.Sprint(got) != want {
		t.Errorf("due reviews by pages of 3: %v, want %s (review time, then id; unscheduled and later ones left out)", got, want)
	}
}

func subscriptionsWhere(t T, db docstore.DB) {
	st := store.New(db)
	seedSub(t, st, "a", "ns-1", nil)
	seedSub(t, st, "b", "ns-2", nil)
	seedSub(t, st, "c", "ns-1", nil)
	subs, err := st.SubscriptionsWhere(ctx, "order.namespace_id", "ns-1")
	must(t, err, "where")
	if len(subs) != 2 || subs[0].Order.NamespaceID != "ns-1" {
		t.Errorf("order.namespace_id == ns-1: %d subscriptions, want a and c", len(subs))
	}
}

func updateSubscription(t T, db docstore.DB) {
	st := store.New(db)
	seedSub(t, st, "u", "ns", nil)
	cause := store.Cause{Type: "test", ID: "cmd-1", Key: "cmd-1"}
	for range 2 { // the same cause twice: one history record
		_, _, err := st.UpdateSubscription(ctx, "u", cause, func(s *subscription.Subscription) (subscription.Change, error) {
			s.Order.Seats++
			s.Version++
			return subscription.Change{From: s.Status, To: s.Status, Reason: "seat"}, nil
		})
		must(t, err, "update")
	}
	s, err := st.Subscription(ctx, nil, "u")
	must(t, err, "read")
	h, err := st.SubscriptionHistory(ctx, "u")
	must(t, err, "history")
	if s.Order.Seats != 7 || len(h) != 1 {
		t.Errorf("after two updates: %d seats, %d history records; want 7 and 1 (one per cause key)", s.Order.Seats, len(h))
	}
	if _, _, err := st.UpdateSubscription(ctx, "nobody", cause, func(*subscription.Subscription) (subscription.Change, error) {
		return subscription.Change{}, nil
	}); !docstore.IsNotFound(err) {
		t.Errorf("update of an absent subscription: %v, want ErrNotFound", err)
	}
}

func webhookEvents(t T, db docstore.DB) {
	st := store.New(db)
	ev := store.WebhookEvent{ID: "evt_1", Status: "stored", Deliveries: 1, Raw: "{}"}
	_, created, err := st.CreateWebhookEvent(ctx, ev)
	must(t, err, "create")
	again, createdAgain, err := st.CreateWebhookEvent(ctx, store.WebhookEvent{ID: "evt_1", Status: "other", Deliveries: 1})
	must(t, err, "repeat")
	if !created || createdAgain || again.Status != "stored" || again.Deliveries != 2 {
		t.Errorf("created %v then %v; stored %+v: want the first record kept, 2 deliveries", created, createdAgain, again)
	}
	again.Status = "published"
	must(t, st.SaveWebhookEvent(ctx, again), "save")
	must(t, st.CountWebhookDelivery(ctx, "evt_1"), "count a delivery")
	got, err := st.WebhookEvent(ctx, "evt_1")
	must(t, err, "read")
	if got.Status != "published" || got.Deliveries != 3 || got.Raw != "{}" {
		t.Errorf("stored %+v, want published with 3 deliveries", got)
	}
	if err := st.CountWebhookDelivery(ctx, "evt_unknown"); !docstore.IsNotFound(err) {
		t.Errorf("a delivery of an unknown event counted: %v, want ErrNotFound", err)
	}
	countedTogether(t, st)
}

// countedTogether checks the counts of many events added at once: each
// added to its record, and only the absent record's refused.
func countedTogether(t T, st *store.Store) {
	counts := map[string]int64{"evt_1": 4, "evt_missing": 2}
	for i := range 70 { // more than the store sends at once
		id := fmt.Sprintf("evt_many_%d", i)
		_, _, err := st.CreateWebhookEvent(ctx, store.WebhookEvent{ID: id, Status: "published", Deliveries: 1})
		must(t, err, "create "+id)
		counts[id] = int64(i%3 + 1)
	}
	errs := st.CountWebhookDeliveries(ctx, counts)
	if len(errs) != 1 || !docstore.IsNotFound(errs["evt_missing"]) {
		t.Errorf("counted together: errors %v, want ErrNotFound for evt_missing alone", errs)
	}
	for id, n := range counts {
		want := 1 + n
		if id == "evt_1" {
			want = 3 + n
		}
		if got, err := st.WebhookEvent(ctx, id); id != "evt_missing" && (err != nil || got.Deliveries != want) {
			t.Errorf("%s: %d deliveries (%v), want %d", id, got.Deliveries, err, want)
		}
	}
}

func paymentFailures(t T, db docstore.DB) {
	st := store.New(db)
	for i := range 5 {
		rec := store.PaymentFailureRecord{SubscriptionID: "s", At: base.Add(time.Duration(i) * time.Minute)}
		must(t, st.DB.RunTx(ctx, func(_ ctxT, tx docstore.Tx) error { return st.SavePaymentFailure(tx, fmt.Sprint("f", i), rec) }), "save")
	}
	n, err := st.PaymentFailuresSince(ctx, base.Add(2*time.Minute))
	must(t, err, "count")
	if n != 3 {
		t.Errorf("failures since +2m: %d, want 3", n)
	}
}

func paymentRefs(t T, db docstore.DB) {
	st := store.New(db)
	ref := store.PaymentRef{SubscriptionID: "s", Key: "change-1", InvoiceID: "in_1"}
	must(t, st.DB.RunTx(ctx, func(_ ctxT, tx docstore.Tx) error { return st.SavePaymentRef(tx, "pi_1", ref) }), "save")
	got, found, err := st.FindPaymentRef(ctx, "", "in_unknown", "pi_1")
	must(t, err, "find")
	if !found || got != ref {
		t.Errorf("found %v %+v, want %+v", found, got, ref)
	}
	if _, found, err := st.FindPaymentRef(ctx, "nothing"); found || err != nil {
		t.Errorf("an unknown id: found %v, %v", found, err)
	}
}
