package renewal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/catalog"
	"fulfillment/shared/cloudevent"
	"fulfillment/shared/consumer"
	"fulfillment/shared/emulator"
	"fulfillment/shared/entrypoint"
	"fulfillment/shared/failure"
	"fulfillment/shared/pubsub"
	"fulfillment/shared/store"
	"fulfillment/shared/stripe"
	"fulfillment/shared/subscription"
)

func TestMain(m *testing.M) { emulator.RunTests(m) }

const (
	deadLetterTopic = "dead-letters"
	lead            = 7 * 24 * time.Hour
)

var now = time.Date(2026, 3, 10, 6, 0, 0, 0, time.UTC)

// charge is one ChargeRenewal call the fake biller received.
type charge struct {
	Invoice stripe.RenewalInvoice
	Key     string
	Err     error
}

// biller is an in-process Biller: it records every call and fails the
// calls for which fail returns an error.
type biller struct {
	mu    sync.Mutex
	calls []charge
	fail  func(r stripe.RenewalInvoice, attempt int) error
}

func (b *biller) ChargeRenewal(_ context.Context, r stripe.RenewalInvoice) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var err error
	if b.fail != nil {
		attempt := 1
		for _, c := range b.calls {
			if c.Invoice.SubscriptionID == r.SubscriptionID {
				attempt++
			}
		}
		err = b.fail(r, attempt)
	}
	b.calls = append(b.calls, charge{Invoice: r, Key: r.IdempotencyKey("invoice"), Err: err})
	if err != nil {
		return "", err
	}
	return "in_" + r.SubscriptionID, nil
}

func (b *biller) Calls() []charge {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]charge(nil), b.calls...)
}

type fixture struct {
	st   *store.Store
	rec  *pubsub.Recorder
	bill *biller
	f    *Function
}

func setup(t *testing.T) fixture {
	t.Helper()
	st := emulator.OpenStore(t, "renew")
	rec, bill := &pubsub.Recorder{}, &biller{}
	f := New(Deps{
		Store: st, Publisher: rec, Billing: bill, LeadTime: lead, DeadLetterTopic: deadLetterTopic,
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now },
	})
	return fixture{st: st, rec: rec, bill: bill, f: f}
}

// seed stores a running subscription whose term ends at termEnd.
func (fx fixture) seed(t *testing.T, id string, status subscription.Status, autoRenew bool, termEnd time.Time) *subscription.Subscription {
	t.Helper()
	s := &subscription.Subscription{
		ID: id, Status: status, PurchaseID: "cs_" + id, Version: 1,
		Order:    catalog.Order{PlanCode: "premium", Seats: 10, Deployment: catalog.DeploymentSaaS, NamespaceID: "ns", AutoRenew: autoRenew, TermMonths: 12},
		Customer: catalog.Customer{ProviderCustomerID: "cus_" + id},
		TermEnd:  termEnd, TermStart: termEnd.AddDate(-1, 0, 0), LastEventAt: termEnd.AddDate(-1, 0, 0),
	}
	if _, err := fx.st.Doc(store.Subscriptions, id).Set(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return s
}

func (fx fixture) sub(t *testing.T, id string) *subscription.Subscription {
	t.Helper()
	s, err := fx.st.Subscription(context.Background(), nil, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tick is a Cloud Scheduler tick as delivered: a plain Pub/Sub message.
func tick(t *testing.T, messageID string) event.Event {
	t.Helper()
	e, err := cloudevent.FromMessage(cloudevent.Message{Data: []byte("{}"), MessageID: messageID, PublishTime: now}, "projects/p/topics/"+catalog.TopicRenewalTicks)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// unitSource and unitID name a renewal action the way renewal does.
func unit(id, action string, termEnd time.Time) event.Event {
	e := event.New()
	e.SetID(id + "/" + action + "/" + termEnd.Format(time.DateOnly))
	e.SetSource(catalog.SourceRenewal)
	return e
}

func (fx fixture) handle(t *testing.T, e event.Event) {
	t.Helper()
	if err := fx.f.Handle(context.Background(), e); err != nil {
		t.Fatalf("Handle: %v", err)
	}
}

func TestTickChargesDueAndExpiresEnded(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	dueEnd := time.Date(2026, 3, 13, 0, 0, 0, 0, time.UTC)
	endedEnd := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)
	fx.seed(t, "due", subscription.Active, true, dueEnd)
	fx.seed(t, "ended", subscription.Active, false, endedEnd)
	fx.seed(t, "later", subscription.Active, true, now.AddDate(0, 2, 0))
	fx.seed(t, "gone", subscription.Canceled, true, dueEnd)
	fx.handle(t, tick(t, "m1"))

	calls := fx.bill.Calls()
	if len(calls) != 1 {
		t.Fatalf("biller calls = %+v, want one for the due subscription", calls)
	}
	inv := calls[0].Invoice
	if inv.SubscriptionID != "due" || inv.CustomerID != "cus_due" || !inv.TermStart.Equal(dueEnd) || inv.AmountCents != 10*29*12*100 || inv.Currency != "usd" {
		t.Errorf("invoice = %+v", inv)
	}
	if calls[0].Key != "renewal-due-2026-03-13-invoice" {
		t.Errorf("idempotency key = %s", calls[0].Key)
	}
	due := fx.sub(t, "due")
	if !due.RenewalPendingFor.Equal(dueEnd) || due.RenewalInvoiceID != "in_due" || due.Version != 2 || due.Status != subscription.Active {
		t.Errorf("due subscription = %+v", due)
	}
	if s := fx.sub(t, "ended"); s.Status != subscription.Expired || s.Version != 2 {
		t.Errorf("ended subscription = %+v", s)
	}
	for _, id := range []string{"later", "gone"} {
		if s := fx.sub(t, id); s.Version != 1 {
			t.Errorf("%s was touched: %+v", id, s)
		}
	}
	out := fx.rec.On(catalog.TopicSubscriptionEvents)
	if len(out) != 1 || out[0].Type() != catalog.SubscriptionExpired || out[0].Subject() != "ended" ||
		out[0].ID() != cloudevent.DerivedID(unit("ended", "expire", endedEnd), catalog.SubscriptionExpired) {
		t.Fatalf("published %v, want one expiry", out)
	}
	h, err := fx.st.SubscriptionHistory(context.Background(), "due")
	if err != nil || len(h) != 1 || !strings.Contains(h[0].Reason, "in_due") {
		t.Errorf("history = %+v, %v", h, err)
	}
}

func TestTickOverHTTPAsPlainPush(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	fx.seed(t, "due", subscription.PastDue, true, now.Add(48*time.Hour))
	srv := httptest.NewServer(entrypoint.Serve(fx.f, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	body := emulator.RawPushBody([]byte(`{"job":"renewal"}`), nil, "4242")
	if code, answer := emulator.Post(t, srv.URL, body); code != http.StatusNoContent {
		t.Fatalf("push answered %d %s", code, answer)
	}
	if calls := fx.bill.Calls(); len(calls) != 1 || calls[0].Invoice.SubscriptionID != "due" {
		t.Fatalf("biller calls = %+v", calls)
	}
}

func TestRepeatedTicksChargeOnce(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	fx.seed(t, "due", subscription.Active, true, now.Add(72*time.Hour))
	first := tick(t, "m1")
	fx.handle(t, first)
	fx.handle(t, first)         // the same tick redelivered
	fx.handle(t, tick(t, "m2")) // the next tick
	if calls := fx.bill.Calls(); len(calls) != 1 {
		t.Fatalf("biller called %d times, want 1", len(calls))
	}
	if s := fx.sub(t, "due"); s.Version != 2 {
		t.Errorf("version = %d, want 2", s.Version)
	}
	h, _ := fx.st.SubscriptionHistory(context.Background(), "due")
	if len(h) != 1 {
		t.Errorf("history has %d records, want 1", len(h))
	}
}

func TestAlreadyRaisedRenewalIsLeftAlone(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	end := now.Add(72 * time.Hour)
	s := fx.seed(t, "raised", subscription.Active, true, end)
	s.RenewalPendingFor, s.RenewalInvoiceID = end, "in_earlier"
	if _, err := fx.st.Doc(store.Subscriptions, s.ID).Set(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	fx.handle(t, tick(t, "m9"))
	if calls := fx.bill.Calls(); len(calls) != 0 {
		t.Fatalf("charged a renewal already raised: %+v", calls)
	}
	if got := fx.sub(t, "raised"); got.Version != 1 || got.RenewalInvoiceID != "in_earlier" {
		t.Errorf("subscription = %+v", got)
	}
}

func TestPermanentChargeFailureIsDeadLetteredOthersStillRenew(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	end := time.Date(2026, 3, 12, 0, 0, 0, 0, time.UTC)
	fx.seed(t, "bad", subscription.Active, true, end)
	fx.seed(t, "good", subscription.Active, true, end)
	fx.bill.fail = func(r stripe.RenewalInvoice, _ int) error {
		if r.SubscriptionID == "bad" {
			return failure.Permanentf("stripe answered 400: No such customer: %s", r.CustomerID)
		}
		return nil
	}
	fx.handle(t, tick(t, "m1"))

	u := unit("bad", "charge", end)
	var dl consumer.DeadLetter
	if err := fx.st.Get(context.Background(), nil, fx.st.Doc(store.DeadLetters, Name+"_"+cloudevent.Key(u)), &dl); err != nil {
		t.Fatalf("dead letter: %v", err)
	}
	if dl.EventID != "bad/charge/2026-03-12" || !strings.Contains(dl.Reason, "No such customer") {
		t.Errorf("dead letter = %+v", dl)
	}
	if dead := fx.rec.On(deadLetterTopic); len(dead) != 1 || dead[0].ID() != u.ID() {
		t.Fatalf("dead-letter topic got %v", dead)
	}
	if s := fx.sub(t, "bad"); s.Version != 1 || !s.RenewalPendingFor.IsZero() {
		t.Errorf("bad subscription changed: %+v", s)
	}
	if s := fx.sub(t, "good"); s.RenewalInvoiceID != "in_good" {
		t.Errorf("good subscription not renewed: %+v", s)
	}
}

func TestTransientChargeFailureIsRetriedWithTheSameKey(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	fx.seed(t, "flaky", subscription.Active, true, now.Add(24*time.Hour))
	fx.bill.fail = func(_ stripe.RenewalInvoice, attempt int) error {
		if attempt == 1 {
			return fmt.Errorf("stripe.ChargeRenewal invoice: %w", errors.New("503 service unavailable"))
		}
		return nil
	}
	if err := fx.f.Handle(context.Background(), tick(t, "m1")); err == nil {
		t.Fatal("Handle = nil after a transient charge failure, want an error (redeliver the tick)")
	}
	if s := fx.sub(t, "flaky"); s.Version != 1 {
		t.Fatalf("subscription changed after a failed charge: %+v", s)
	}
	if dead := fx.rec.On(deadLetterTopic); len(dead) != 0 {
		t.Fatal("a transient failure was dead-lettered")
	}
	fx.handle(t, tick(t, "m1"))
	fx.handle(t, tick(t, "m1"))

	calls := fx.bill.Calls()
	if len(calls) != 2 || calls[0].Err == nil || calls[1].Err != nil || calls[0].Key != calls[1].Key {
		t.Fatalf("biller calls = %+v, want a failed and a successful call with one key", calls)
	}
	if s := fx.sub(t, "flaky"); s.Version != 2 || s.RenewalInvoiceID != "in_flaky" {
		t.Errorf("subscription = %+v", s)
	}
}

func TestPublishOutageOnExpiryIsRepublished(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	end := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)
	fx.seed(t, "ended", subscription.Active, false, end)
	fx.rec.Err = errors.New("pubsub unavailable")
	if err := fx.f.Handle(context.Background(), tick(t, "m1")); err == nil {
		t.Fatal("Handle = nil during a Pub/Sub outage, want an error (redeliver the tick)")
	}
	fx.rec.Err = nil
	fx.handle(t, tick(t, "m1"))

	out := fx.rec.On(catalog.TopicSubscriptionEvents)
	if len(out) != 1 || out[0].ID() != cloudevent.DerivedID(unit("ended", "expire", end), catalog.SubscriptionExpired) {
		t.Fatalf("published %v, want the recorded expiry once", out)
	}
}
