package paymentresult

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/runtime/entrypoint"
	"fulfillment/shared/testsupport/emulator"
	"fulfillment/shared/testsupport/storetest"
)

func TestMain(m *testing.M) { storetest.RunTests(m) }

const deadLetterTopic = "dead-letters"

type fixture struct {
	st  *store.Store
	rec *pubsub.Recorder
	f   *Function
}

func setup(t testing.TB) fixture {
	t.Helper()
	st := storetest.Open(t, "pr")
	rec := &pubsub.Recorder{}
	f := New(Deps{Store: st, Publisher: rec, DeadLetterTopic: deadLetterTopic, Logger: slog.New(slog.DiscardHandler)})
	return fixture{st: st, rec: rec, f: f}
}

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func order(plan string) *catalog.Order {
	return &catalog.Order{PlanCode: plan, Seats: 5, Deployment: catalog.DeploymentSaaS, NamespaceID: "ns-1", AutoRenew: true, TermMonths: 12}
}

// providerEvent is what checkout-webhook publishes for a Stripe event.
func providerEvent(t *testing.T, id, typ string, pe catalog.ProviderEvent) event.Event {
	t.Helper()
	pe.Provider, pe.ProviderEventID = "stripe", id
	e, err := cloudevent.New(context.Background(), id, catalog.SourceCheckoutWebhook, typ, pe.SubscriptionID, pe)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func checkout(t *testing.T, id, session, plan, paymentStatus string, at time.Time) event.Event {
	return providerEvent(t, id, catalog.CheckoutCompleted, catalog.ProviderEvent{
		OccurredAt: at, SubscriptionID: "sub-" + session, CheckoutSessionID: session, PaymentStatus: paymentStatus,
		AmountCents: 100, Order: order(plan), Customer: &catalog.Customer{ProviderCustomerID: "cus_1", Email: "a@example.com"},
	})
}

func invoice(t *testing.T, id, typ, subID string, termStart, at time.Time) event.Event {
	return providerEvent(t, id, typ, catalog.ProviderEvent{
		OccurredAt: at, SubscriptionID: subID, InvoiceID: "in_" + id, TermStart: termStart, AmountCents: 500,
	})
}

func (fx fixture) handle(t *testing.T, e event.Event) {
	t.Helper()
	if err := fx.f.Handle(context.Background(), e); err != nil {
		t.Fatalf("Handle %s: %v", e.Type(), err)
	}
}

func (fx fixture) sub(t *testing.T, id string) *subscription.Subscription {
	t.Helper()
	s, err := fx.st.Subscription(context.Background(), nil, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (fx fixture) history(t *testing.T, id string) []store.HistoryRecord {
	t.Helper()
	h, err := fx.st.SubscriptionHistory(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// published lists the ids and types published on topic.
func published(rec *pubsub.Recorder, topic string) (ids, types []string) {
	for _, e := range rec.On(topic) {
		ids, types = append(ids, e.ID()), append(types, e.Type())
	}
	return ids, types
}

func TestPurchaseActivatesAndAnnounces(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	in := checkout(t, "evt_1", "cs_1", "premium", "paid", t0)
	fx.handle(t, in)

	s := fx.sub(t, "sub-cs_1")
	if s.Status != subscription.Active || s.Version != 1 || s.PurchaseID != "cs_1" {
		t.Fatalf("subscription = %+v", s)
	}
	if want := time.Date(2027, 3, 10, 0, 0, 0, 0, time.UTC); !s.TermEnd.Equal(want) {
		t.Errorf("term end = %s, want %s", s.TermEnd, want)
	}
	h := fx.history(t, "sub-cs_1")
	if len(h) != 1 || h[0].To != "active" || h[0].CauseID != "evt_1" || h[0].NoOp {
		t.Errorf("history = %+v", h)
	}
	ids, types := published(fx.rec, catalog.TopicSubscriptionEvents)
	if len(ids) != 1 || types[0] != catalog.SubscriptionActivated || ids[0] != cloudevent.DerivedID(in, catalog.SubscriptionActivated) {
		t.Fatalf("published %v %v", ids, types)
	}
	var snap catalog.SubscriptionSnapshot
	if err := fx.rec.On(catalog.TopicSubscriptionEvents)[0].DataAs(&snap); err != nil || snap.Version != 1 || snap.Status != "active" || snap.Order.Seats != 5 {
		t.Errorf("snapshot = %+v, %v", snap, err)
	}
}

func TestPendingCheckoutSettlesLater(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		typ       string
		status    subscription.Status
		published []string
	}{
		{"succeeded", catalog.CheckoutAsyncPaymentSucceed, subscription.Active, []string{catalog.SubscriptionActivated}},
		{"failed", catalog.CheckoutAsyncPaymentFailed, subscription.Canceled, []string{catalog.SubscriptionCanceled, catalog.PaymentFailed}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fx := setup(t)
			fx.handle(t, checkout(t, "evt_a", "cs_2", "premium", "unpaid", t0))
			if s := fx.sub(t, "sub-cs_2"); s.Status != subscription.Pending {
				t.Fatalf("status after unpaid checkout = %s", s.Status)
			}
			if ids, _ := published(fx.rec, catalog.TopicSubscriptionEvents); len(ids) != 0 {
				t.Fatalf("pending purchase announced %v", ids)
			}
			settle := providerEvent(t, "evt_b", c.typ, catalog.ProviderEvent{
				OccurredAt: t0.Add(time.Hour), SubscriptionID: "sub-cs_2", CheckoutSessionID: "cs_2",
				Order: order("premium"), Customer: &catalog.Customer{ProviderCustomerID: "cus_1"},
			})
			fx.handle(t, settle)
			if s := fx.sub(t, "sub-cs_2"); s.Status != c.status || s.Version != 2 {
				t.Fatalf("after settle: %+v", s)
			}
			if _, types := published(fx.rec, catalog.TopicSubscriptionEvents); strings.Join(types, ",") != strings.Join(c.published, ",") {
				t.Errorf("published %v, want %v", types, c.published)
			}
		})
	}
}

func TestPushDeliveryOverHTTP(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	srv := httptest.NewServer(entrypoint.Serve(fx.f, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	in := checkout(t, "evt_http", "cs_http", "ultimate", "paid", t0)

	if code, body := emulator.Post(t, srv.URL, emulator.PushBody(in, "1")); code != http.StatusNoContent {
		t.Fatalf("push answered %d %s", code, body)
	}
	if s := fx.sub(t, "sub-cs_http"); s.Status != subscription.Active || s.Order.PlanCode != "ultimate" {
		t.Fatalf("subscription = %+v", s)
	}
	if ids, _ := published(fx.rec, catalog.TopicSubscriptionEvents); len(ids) != 1 || ids[0] != cloudevent.DerivedID(in, catalog.SubscriptionActivated) {
		t.Fatalf("published %v", ids)
	}
}

func TestDuplicateDeliveryChangesOnceAndRepublishes(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	in := checkout(t, "evt_dup", "cs_dup", "premium", "paid", t0)
	fx.handle(t, in)
	fx.handle(t, in)

	if s := fx.sub(t, "sub-cs_dup"); s.Version != 1 {
		t.Errorf("version = %d after a duplicate, want 1", s.Version)
	}
	if h := fx.history(t, "sub-cs_dup"); len(h) != 1 {
		t.Errorf("history has %d records, want 1", len(h))
	}
	ids, _ := published(fx.rec, catalog.TopicSubscriptionEvents)
	want := cloudevent.DerivedID(in, catalog.SubscriptionActivated)
	if len(ids) != 2 || ids[0] != want || ids[1] != want {
		t.Fatalf("published %v, want the same id %s twice", ids, want)
	}
}

func TestStaleInputsAreRecordedNoOps(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		input  func(t *testing.T, s *subscription.Subscription) event.Event
		reason string
		// publishes is what the no-op still announces, beyond the activation.
		publishes []string
	}{
		{
			name: "payment failure older than the newest event",
			input: func(t *testing.T, s *subscription.Subscription) event.Event {
				return invoice(t, "evt_late_fail", catalog.InvoicePaymentFailed, s.ID, s.TermEnd, t0.Add(-time.Hour))
			},
			reason:    "stale payment failure",
			publishes: []string{catalog.PaymentFailed}, // every distinct failure still counts for alerting
		},
		{
			name: "invoice for a term already paid",
			input: func(t *testing.T, s *subscription.Subscription) event.Event {
				return invoice(t, "evt_old_paid", catalog.InvoicePaid, s.ID, s.TermStart, t0.Add(time.Hour))
			},
			reason: "invoice pays a term already paid",
		},
		{
			name: "second checkout event for the same session",
			input: func(t *testing.T, s *subscription.Subscription) event.Event {
				return checkout(t, "evt_again", "cs_stale", "ultimate", "paid", t0.Add(time.Hour))
			},
			reason: "already purchased",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fx := setup(t)
			fx.handle(t, checkout(t, "evt_buy", "cs_stale", "premium", "paid", t0))
			before := fx.sub(t, "sub-cs_stale")
			in := c.input(t, before)
			fx.handle(t, in)

			after := fx.sub(t, "sub-cs_stale")
			if after.Version != before.Version || after.Status != before.Status || after.Order.PlanCode != "premium" || !after.TermEnd.Equal(before.TermEnd) {
				t.Fatalf("stale input changed the subscription: %+v -> %+v", before, after)
			}
			h := fx.history(t, "sub-cs_stale")
			if len(h) != 2 || !h[1].NoOp || h[1].Reason != c.reason || h[1].CauseID != in.ID() {
				t.Fatalf("history = %+v, want a no-op record %q", h, c.reason)
			}
			_, types := published(fx.rec, catalog.TopicSubscriptionEvents)
			want := append([]string{catalog.SubscriptionActivated}, c.publishes...)
			if strings.Join(types, ",") != strings.Join(want, ",") {
				t.Errorf("published %v, want %v", types, want)
			}
		})
	}
}

func TestRenewalAndFailureMoveTheState(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	fx.handle(t, checkout(t, "evt_buy", "cs_life", "premium", "paid", t0))
	s := fx.sub(t, "sub-cs_life")
	firstEnd := s.TermEnd

	fx.handle(t, invoice(t, "evt_fail", catalog.InvoicePaymentFailed, s.ID, firstEnd, t0.Add(24*time.Hour)))
	if s := fx.sub(t, s.ID); s.Status != subscription.PastDue || s.Version != 2 {
		t.Fatalf("after failure: %+v", s)
	}
	fx.handle(t, invoice(t, "evt_paid", catalog.InvoicePaid, s.ID, firstEnd, t0.Add(48*time.Hour)))
	s = fx.sub(t, s.ID)
	if s.Status != subscription.Active || !s.TermStart.Equal(firstEnd) || !s.TermEnd.Equal(firstEnd.AddDate(1, 0, 0)) || s.Version != 3 {
		t.Fatalf("after renewal: %+v", s)
	}
	fx.handle(t, providerEvent(t, "evt_del", catalog.ProviderSubscriptionDeleted, catalog.ProviderEvent{SubscriptionID: s.ID, OccurredAt: t0.Add(72 * time.Hour)}))
	if s := fx.sub(t, s.ID); s.Status != subscription.Canceled || s.Version != 4 {
		t.Fatalf("after cancel: %+v", s)
	}
	_, types := published(fx.rec, catalog.TopicSubscriptionEvents)
	want := []string{catalog.SubscriptionActivated, catalog.SubscriptionPastDue, catalog.PaymentFailed, catalog.SubscriptionRenewed, catalog.SubscriptionCanceled}
	if strings.Join(types, ",") != strings.Join(want, ",") {
		t.Errorf("published %v, want %v", types, want)
	}
}

func TestPermanentFailuresAreDeadLettered(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		in     func(t *testing.T) event.Event
		reason string
	}{
		{"unknown plan", func(t *testing.T) event.Event { return checkout(t, "evt_plan", "cs_plan", "platinum", "paid", t0) }, "unknown plan"},
		{"unusable provider event", func(t *testing.T) event.Event {
			return providerEvent(t, "evt_bad", catalog.CheckoutCompleted, catalog.ProviderEvent{SubscriptionID: "sub-cs_bad", Invalid: "metadata.seats is not a number"})
		}, "unusable"},
		{"undecodable data", func(t *testing.T) event.Event {
			e, err := cloudevent.New(context.Background(), "evt_junk", catalog.SourceCheckoutWebhook, catalog.InvoicePaid, "", []int{1, 2})
			if err != nil {
				t.Fatal(err)
			}
			return e
		}, "decode"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fx := setup(t)
			in := c.in(t)
			if err := fx.f.Handle(context.Background(), in); err != nil {
				t.Fatalf("Handle = %v, want nil (acknowledged)", err)
			}
			var dl consumer.DeadLetter
			if err := fx.st.Get(context.Background(), nil, store.DeadLetters, Name+"_"+cloudevent.Key(in), &dl); err != nil {
				t.Fatalf("dead letter: %v", err)
			}
			if dl.EventID != in.ID() || dl.Consumer != Name || dl.Topic != deadLetterTopic || !strings.Contains(dl.Reason, c.reason) {
				t.Errorf("dead letter = %+v", dl)
			}
			dead := fx.rec.On(deadLetterTopic)
			if len(dead) != 1 || dead[0].ID() != in.ID() || dead[0].Type() != in.Type() {
				t.Fatalf("dead-letter topic got %v", dead)
			}
			if ids, _ := published(fx.rec, catalog.TopicSubscriptionEvents); len(ids) != 0 {
				t.Errorf("published %v for a dead-lettered event", ids)
			}
			docs, err := fx.st.DB.Query(context.Background(), docstore.Query{Collection: store.Subscriptions})
			if err != nil || len(docs) != 0 {
				t.Errorf("subscriptions stored: %d, %v", len(docs), err)
			}
		})
	}
}

func TestPublishOutageIsRetriedWithOneStateChange(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	in := checkout(t, "evt_out", "cs_out", "premium", "paid", t0)
	fx.rec.Err = errors.New("pubsub unavailable")
	if err := fx.f.Handle(context.Background(), in); err == nil {
		t.Fatal("Handle = nil during a Pub/Sub outage, want an error (redeliver)")
	}
	if dead := fx.rec.On(deadLetterTopic); len(dead) != 0 {
		t.Fatalf("a transient failure was dead-lettered")
	}
	fx.rec.Err = nil
	fx.handle(t, in)

	if s := fx.sub(t, "sub-cs_out"); s.Version != 1 || s.Status != subscription.Active {
		t.Errorf("subscription = %+v", s)
	}
	if h := fx.history(t, "sub-cs_out"); len(h) != 1 {
		t.Errorf("history has %d records, want 1", len(h))
	}
	ids, _ := published(fx.rec, catalog.TopicSubscriptionEvents)
	if len(ids) != 1 || ids[0] != cloudevent.DerivedID(in, catalog.SubscriptionActivated) {
		t.Fatalf("published %v, want the activation once", ids)
	}
}

func TestEventBeforeItsPurchaseIsRetried(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	buy := checkout(t, "evt_buy", "cs_ooo", "premium", "paid", t0)
	termEnd := time.Date(2027, 3, 10, 0, 0, 0, 0, time.UTC)
	paid := invoice(t, "evt_paid_early", catalog.InvoicePaid, "sub-cs_ooo", termEnd, t0.Add(time.Hour))

	if err := fx.f.Handle(context.Background(), paid); err == nil {
		t.Fatal("an invoice for an unknown subscription was acknowledged; want a retry")
	}
	if dead := fx.rec.On(deadLetterTopic); len(dead) != 0 {
		t.Fatalf("dead-lettered an event whose purchase may still come")
	}
	fx.handle(t, buy)
	fx.handle(t, paid)
	if s := fx.sub(t, "sub-cs_ooo"); s.Version != 2 || !s.TermStart.Equal(termEnd) {
		t.Fatalf("after the retried invoice: %+v", s)
	}
}

// An invoice for a subscription that has not come is retried, and on the
// push's last delivery attempt parked in dead_letters until the subscription
// exists (not sent to the dead-letter topic, whose readers would find it
// done by then), through the real HTTP entry point.
func TestUnknownSubscriptionIsParkedOnTheLastDeliveryAttempt(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	orphan := invoice(t, "evt_orphan", catalog.InvoicePaid, "sub-cs_never", t0.AddDate(1, 0, 0), t0)
	fx.park(t, orphan)
	dl, found := storetest.Lookup[consumer.DeadLetter](t, fx.st, store.DeadLetters, Name+"_"+cloudevent.Key(orphan))
	if !found || !strings.Contains(dl.Reason, "parked after 10 delivery attempts until subscriptions/sub-cs_never exists") ||
		!strings.Contains(dl.Reason, "not found") || dl.Awaiting != "subscriptions/sub-cs_never" {
		t.Fatalf("dead letter = %+v, %v", dl, found)
	}
	if dead := fx.rec.On(deadLetterTopic); len(dead) != 0 {
		t.Fatalf("dead-letter topic got %v", dead)
	}
	if again := fx.rec.On(catalog.TopicProviderEvents); len(again) != 0 {
		t.Fatalf("sent again with no subscription: %v", again)
	}
}

// The purchase that creates the subscription sends the events parked for it
// again on provider-events, with their attempt counts cleared, and removes
// them from dead_letters; delivered, they apply. A repeat of the purchase
// has nothing left to send.
func TestParkedEventIsSentAgainWhenItsPurchaseArrives(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	termEnd := time.Date(2027, 3, 10, 0, 0, 0, 0, time.UTC)
	paid := invoice(t, "evt_paid_parked", catalog.InvoicePaid, "sub-cs_late", termEnd, t0.Add(time.Hour))
	other := invoice(t, "evt_paid_other", catalog.InvoicePaid, "sub-cs_other", termEnd, t0.Add(time.Hour))
	fx.park(t, paid)
	fx.park(t, other)

	buy := checkout(t, "evt_buy_late", "cs_late", "premium", "paid", t0)
	fx.handle(t, buy)
	again := fx.rec.On(catalog.TopicProviderEvents)
	if len(again) != 1 || again[0].ID() != paid.ID() || again[0].Type() != catalog.InvoicePaid {
		t.Fatalf("sent again: %v, want the parked invoice.paid of this subscription alone", again)
	}
	if _, found := storetest.Lookup[consumer.DeadLetter](t, fx.st, store.DeadLetters, Name+"_"+cloudevent.Key(paid)); found {
		t.Fatal("the parked event is still in dead_letters")
	}
	if _, found := storetest.Lookup[consumer.DeadLetter](t, fx.st, store.DeadLetters, Name+"_"+cloudevent.Key(other)); !found {
		t.Fatal("another subscription's parked event was taken")
	}
	if _, found := storetest.Lookup[map[string]any](t, fx.st, consumer.Attempts, Name+"_"+cloudevent.Key(paid)); found {
		t.Fatal("the parked event's attempt count was kept")
	}
	fx.handle(t, again[0])
	if s := fx.sub(t, "sub-cs_late"); s.Version != 2 || !s.TermStart.Equal(termEnd) {
		t.Fatalf("after the parked invoice: %+v", s)
	}
	fx.handle(t, buy)
	if n := len(fx.rec.On(catalog.TopicProviderEvents)); n != 1 {
		t.Fatalf("a repeat of the purchase sent %d events again, want none more", n)
	}
}

// park delivers e through the HTTP entry point until its last attempt.
func (fx fixture) park(t *testing.T, e event.Event) {
	t.Helper()
	srv := httptest.NewServer(entrypoint.Serve(fx.f, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	for attempt := 1; attempt < consumer.DefaultMaxDeliveryAttempts; attempt++ {
		if status, body := emulator.Post(t, srv.URL, pushWithAttempt(e, attempt)); status != http.StatusInternalServerError {
			t.Fatalf("attempt %d answered %d %s, want 500 (redeliver)", attempt, status, body)
		}
		if _, found := storetest.Lookup[consumer.DeadLetter](t, fx.st, store.DeadLetters, Name+"_"+cloudevent.Key(e)); found {
			t.Fatalf("parked at attempt %d, before the last", attempt)
		}
	}
	if status, body := emulator.Post(t, srv.URL, pushWithAttempt(e, consumer.DefaultMaxDeliveryAttempts)); status/100 != 2 {
		t.Fatalf("last attempt answered %d %s, want it acknowledged", status, body)
	}
}

// pushWithAttempt is a Pub/Sub push body carrying e with its deliveryAttempt,
// as Pub/Sub sends it on a subscription with a dead-letter policy.
func pushWithAttempt(e event.Event, attempt int) []byte {
	var body map[string]any
	_ = json.Unmarshal(emulator.PushBody(e, "m-"+e.ID()), &body)
	body["deliveryAttempt"] = attempt
	b, _ := json.Marshal(body)
	return b
}
