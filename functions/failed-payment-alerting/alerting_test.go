package failedpaymentalerting

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/alerting"
	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/runtime/entrypoint"
	"fulfillment/shared/runtime/failure"
	"fulfillment/shared/testsupport/emulator"
	"fulfillment/shared/testsupport/storetest"
	"fulfillment/shared/testsupport/testdouble"
)

func TestMain(m *testing.M) { storetest.RunTests(m) }

const (
	deadLetterTopic = "dead-letters"
	routingKey      = "R0UT1NGKEY0123456789abcdefABCDEF" // PagerDuty keys are 32 characters
	threshold       = 3
	window          = time.Hour
)

// clock is a settable Deps.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	st    *store.Store
	rec   *pubsub.Recorder
	slack *testdouble.Slack
	pd    *testdouble.PagerDuty
	clock *clock
	f     *Function
}

func setup(t testing.TB) fixture {
	t.Helper()
	st := storetest.Open(t, "alert")
	slack, err := testdouble.StartSlack("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slack.Close() })
	pd, err := testdouble.StartPagerDuty("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pd.Close() })
	c := &clock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	rec := &pubsub.Recorder{}
	f := New(Deps{
		Store: st, Publisher: rec,
		Slack:     alerting.NewSlack(slack.URL()+"/services/T000/B000/XXXX", nil),
		PagerDuty: NotifierFunc(alerting.NewPagerDuty(pd.URL(), routingKey, nil).Trigger),
		Threshold: threshold, Window: window, DeadLetterTopic: deadLetterTopic,
		Logger: slog.New(slog.DiscardHandler), Now: c.Now,
	})
	return fixture{st: st, rec: rec, slack: slack, pd: pd, clock: c, f: f}
}

// failureEvent is failure n, happening now on the fixture's clock.
func (fx fixture) failureEvent(t *testing.T, n int) event.Event {
	t.Helper()
	return failureEventAt(t, n, fx.clock.Now())
}

func failureEventAt(t *testing.T, n int, occurredAt time.Time) event.Event {
	t.Helper()
	sub := fmt.Sprintf("sub-%d", n)
	e, err := cloudevent.New(context.Background(), fmt.Sprintf("pf-%d", n), catalog.SourcePaymentResult, catalog.PaymentFailed, sub, catalog.PaymentFailure{
		SubscriptionID: sub, ProviderEventID: fmt.Sprintf("evt_%d", n), AmountCents: 1000, Reason: "card_declined",
		OccurredAt: occurredAt,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (fx fixture) handle(t *testing.T, e event.Event) {
	t.Helper()
	if err := fx.f.Handle(context.Background(), e); err != nil {
		t.Fatalf("Handle %s: %v", e.ID(), err)
	}
}

// sent counts a double's calls by answer.
func sent(s interface{ Calls() []testdouble.Call }) (ok, failed int) {
	return testdouble.Answered(s.Calls())
}

func (fx fixture) alert(t *testing.T) (AlertState, bool) {
	t.Helper()
	return storetest.Lookup[AlertState](t, fx.st, store.Alerts, alertID)
}

func (fx fixture) failuresStored(t *testing.T) int {
	t.Helper()
	docs, err := fx.st.DB.Query(context.Background(), docstore.Query{Collection: failuresCollection})
	if err != nil {
		t.Fatal(err)
	}
	return len(docs)
}

func TestCrossingSendsOneSlackAndOnePage(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	for n := 1; n < threshold; n++ {
		fx.handle(t, fx.failureEvent(t, n))
	}
	if len(fx.slack.Calls())+len(fx.pd.Calls()) != 0 {
		t.Fatal("alerted below the threshold")
	}
	if _, ok := fx.alert(t); ok {
		t.Fatal("alert state written below the threshold")
	}
	crossing := fx.failureEvent(t, threshold)
	fx.handle(t, crossing)
	fx.handle(t, fx.failureEvent(t, threshold+1)) // still firing: no new alert

	slackCalls, pdCalls := fx.slack.Calls(), fx.pd.Calls()
	if len(slackCalls) != 1 || slackCalls[0].Status != http.StatusOK {
		t.Fatalf("Slack calls = %+v", slackCalls)
	}
	if text, _ := slackCalls[0].Body["text"].(string); !strings.Contains(text, "3 payment failures") {
		t.Errorf("Slack text = %q", text)
	}
	if len(pdCalls) != 1 || pdCalls[0].Status != http.StatusAccepted || pdCalls[0].Path != "/v2/enqueue" {
		t.Fatalf("PagerDuty calls = %+v", pdCalls)
	}
	wantKey := "payment-failures-" + cloudevent.Key(crossing)
	if pdCalls[0].Body["dedup_key"] != wantKey || pdCalls[0].Body["routing_key"] != routingKey {
		t.Errorf("PagerDuty event = %v, want dedup key %s", pdCalls[0].Body, wantKey)
	}
	s, ok := fx.alert(t)
	if !ok || !s.Firing || !s.SlackSent || !s.PagerDutySent || s.Crossings != 1 || s.Count != threshold || s.DedupKey != wantKey {
		t.Errorf("alert state = %+v", s)
	}
	if n := fx.failuresStored(t); n != threshold+1 {
		t.Errorf("%d failures stored, want %d", n, threshold+1)
	}
}

func TestPushDeliveryOverHTTP(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	srv := httptest.NewServer(entrypoint.Serve(fx.f, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	for n := 1; n <= threshold; n++ {
		if code, body := emulator.Post(t, srv.URL, emulator.PushBody(fx.failureEvent(t, n), fmt.Sprint(n))); code != http.StatusNoContent {
			t.Fatalf("push %d answered %d %s", n, code, body)
		}
	}
	if ok, _ := sent(fx.slack); ok != 1 {
		t.Errorf("Slack sent %d, want 1", ok)
	}
	if ok, _ := sent(fx.pd); ok != 1 {
		t.Errorf("PagerDuty sent %d, want 1", ok)
	}
}

func TestDuplicateDeliveryCountsOnce(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	in := fx.failureEvent(t, 1)
	for range threshold + 1 {
		fx.handle(t, in)
	}
	if n := fx.failuresStored(t); n != 1 {
		t.Fatalf("%d failures stored for one event, want 1", n)
	}
	if len(fx.slack.Calls())+len(fx.pd.Calls()) != 0 {
		t.Fatal("one failure delivered several times raised an alert")
	}
	if n := len(fx.rec.Events); n != 0 {
		t.Errorf("published on %d topics, want none", n)
	}
}

func TestLateRedeliveryAfterCrossingAddsNothing(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	for n := 1; n <= threshold; n++ {
		fx.handle(t, fx.failureEvent(t, n))
	}
	before, _ := fx.alert(t)
	fx.clock.Add(10 * time.Minute)
	fx.handle(t, fx.failureEvent(t, 1)) // an old failure, delivered again out of order

	if n := fx.failuresStored(t); n != threshold {
		t.Errorf("%d failures stored, want %d", n, threshold)
	}
	if after, _ := fx.alert(t); !reflect.DeepEqual(after, before) {
		t.Errorf("alert state changed: %+v -> %+v", before, after)
	}
	if len(fx.slack.Calls()) != 1 || len(fx.pd.Calls()) != 1 {
		t.Errorf("calls: Slack %d, PagerDuty %d; want 1 each", len(fx.slack.Calls()), len(fx.pd.Calls()))
	}
}

func TestWindowSlidesClearsAndFiresAgain(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	for n := 1; n <= threshold; n++ {
		fx.handle(t, fx.failureEvent(t, n))
	}
	fx.clock.Add(window + time.Minute) // the window empties
	fx.handle(t, fx.failureEvent(t, 100))
	if s, _ := fx.alert(t); s.Firing {
		t.Fatalf("alert still firing after the window emptied: %+v", s)
	}
	if len(fx.slack.Calls()) != 1 {
		t.Fatalf("Slack calls = %d, want 1", len(fx.slack.Calls()))
	}
	for n := 101; n < 100+threshold; n++ {
		fx.handle(t, fx.failureEvent(t, n))
	}
	s, _ := fx.alert(t)
	if !s.Firing || s.Crossings != 2 || s.DedupKey != "payment-failures-"+cloudevent.Key(fx.failureEvent(t, 100+threshold-1)) {
		t.Errorf("alert state = %+v, want a second crossing", s)
	}
	if ok, _ := sent(fx.slack); ok != 2 {
		t.Errorf("Slack sent %d, want 2", ok)
	}
	if ok, _ := sent(fx.pd); ok != 2 {
		t.Errorf("PagerDuty sent %d, want 2", ok)
	}
}

func TestUndecodableFailureIsDeadLettered(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	in, err := cloudevent.New(context.Background(), "pf-bad", catalog.SourcePaymentResult, catalog.PaymentFailed, "", "not an object")
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.f.Handle(context.Background(), in); err != nil {
		t.Fatalf("Handle = %v, want nil (acknowledged)", err)
	}
	var dl consumer.DeadLetter
	if err := fx.st.Get(context.Background(), nil, store.DeadLetters, Name+"_"+cloudevent.Key(in), &dl); err != nil {
		t.Fatalf("dead letter: %v", err)
	}
	if dl.EventID != "pf-bad" || dl.Type != catalog.PaymentFailed || dl.Topic != deadLetterTopic {
		t.Errorf("dead letter = %+v", dl)
	}
	if dead := fx.rec.On(deadLetterTopic); len(dead) != 1 || dead[0].ID() != "pf-bad" {
		t.Fatalf("dead-letter topic got %v", dead)
	}
	if n := fx.failuresStored(t); n != 0 {
		t.Errorf("%d failures stored", n)
	}
}

func TestSlackOutageOnCrossingIsRetried(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	for n := 1; n < threshold; n++ {
		fx.handle(t, fx.failureEvent(t, n))
	}
	crossing := fx.failureEvent(t, threshold)
	fx.slack.FailNext(1, http.StatusServiceUnavailable)
	if err := fx.f.Handle(context.Background(), crossing); err == nil {
		t.Fatal("Handle = nil while Slack answered 503, want an error (redeliver)")
	}
	// PagerDuty is tried first and pages; only Slack is left for the retry.
	if s, _ := fx.alert(t); !s.Firing || s.SlackSent || !s.PagerDutySent {
		t.Fatalf("alert state after the outage = %+v", s)
	}
	fx.handle(t, crossing) // Pub/Sub's redelivery
	fx.handle(t, crossing) // and one more: nothing left to send

	if ok, failed := sent(fx.slack); ok != 1 || failed != 1 {
		t.Errorf("Slack ok=%d failed=%d, want 1 and 1", ok, failed)
	}
	if ok, failed := sent(fx.pd); ok != 1 || failed != 0 {
		t.Errorf("PagerDuty ok=%d failed=%d, want 1 and 0", ok, failed)
	}
	if s, _ := fx.alert(t); !s.SlackSent || !s.PagerDutySent || s.Crossings != 1 {
		t.Errorf("alert state = %+v", s)
	}
	if n := fx.failuresStored(t); n != threshold {
		t.Errorf("%d failures stored, want %d", n, threshold)
	}
}

func TestRevokedSlackWebhookStillPages(t *testing.T) {
	fx := setup(t)
	fx.slack.FailNext(100, http.StatusNotFound) // Slack's answer for a revoked webhook
	for n := 1; n <= threshold+1; n++ {
		_ = fx.f.Handle(context.Background(), fx.failureEvent(t, n))
	}
	if ok, _ := sent(fx.pd); ok != 1 {
		t.Fatalf("PagerDuty sent %d, want 1 although Slack is gone", ok)
	}
}

func TestSlackOutageWithPagerDutyRefusalIsRetried(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	for n := 1; n < threshold; n++ {
		fx.handle(t, fx.failureEvent(t, n))
	}
	crossing := fx.failureEvent(t, threshold)
	fx.slack.FailNext(1, http.StatusServiceUnavailable)
	fx.pd.FailNext(2, http.StatusBadRequest) // refused for good, on every try
	err := fx.f.Handle(context.Background(), crossing)
	if err == nil || failure.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a transient error (Slack's 503 must be retried)", err)
	}
	dlKey := Name + "_" + cloudevent.Key(crossing)
	if _, found := storetest.Lookup[consumer.DeadLetter](t, fx.st, store.DeadLetters, dlKey); found {
		t.Fatal("dead-lettered although Slack's failure was transient")
	}
	if dead := fx.rec.On(deadLetterTopic); len(dead) != 0 {
		t.Fatalf("dead-letter topic got %v", dead)
	}
	if s, _ := fx.alert(t); !s.Firing || s.SlackSent || s.PagerDutySent {
		t.Fatalf("alert state after the first delivery = %+v", s)
	}

	// Pub/Sub's redelivery: Slack is sent; PagerDuty, refusing again, is the
	// only error left, so the delivery is now dead-lettered.
	if err := fx.f.Handle(context.Background(), crossing); err != nil {
		t.Fatalf("redelivery: Handle = %v, want nil (dead-lettered)", err)
	}
	if ok, failed := sent(fx.slack); ok != 1 || failed != 1 {
		t.Errorf("Slack ok=%d failed=%d, want 1 and 1", ok, failed)
	}
	if ok, failed := sent(fx.pd); ok != 0 || failed != 2 {
		t.Errorf("PagerDuty ok=%d failed=%d, want 0 and 2", ok, failed)
	}
	if s, _ := fx.alert(t); !s.SlackSent || s.PagerDutySent {
		t.Errorf("alert state = %+v", s)
	}
	if _, found := storetest.Lookup[consumer.DeadLetter](t, fx.st, store.DeadLetters, dlKey); !found {
		t.Error("PagerDuty's permanent refusal not dead-lettered once Slack was sent")
	}

	fx.handle(t, crossing) // a late duplicate: Slack is not sent again
	if ok, _ := sent(fx.slack); ok != 1 {
		t.Errorf("Slack sent %d, want 1", ok)
	}
}

// The window counts failures by when they happened: a backlog of old
// failures replayed now (after an outage, from the dead-letter topic) does
// not page; as many recent ones do.
func TestReplayedOldFailuresDoNotPage(t *testing.T) {
	t.Parallel()
	const replayed = 10
	t.Run("a day old", func(t *testing.T) {
		t.Parallel()
		fx := setup(t)
		for n := 1; n <= replayed; n++ {
			fx.handle(t, failureEventAt(t, n, fx.clock.Now().Add(-24*time.Hour)))
		}
		if n := fx.failuresStored(t); n != replayed {
			t.Errorf("%d failures stored, want %d", n, replayed)
		}
		if s, _ := fx.alert(t); s.Firing {
			t.Errorf("alert fired for failures a day old: %+v", s)
		}
		if n := len(fx.slack.Calls()) + len(fx.pd.Calls()); n != 0 {
			t.Errorf("%d notifications for failures a day old", n)
		}
	})
	for name, at := range map[string]func(*clock) time.Time{
		"recent":             func(c *clock) time.Time { return c.Now().Add(-time.Minute) },
		"no occurrence time": func(*clock) time.Time { return time.Time{} }, // counted as now
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fx := setup(t)
			for n := 1; n <= replayed; n++ {
				fx.handle(t, failureEventAt(t, n, at(fx.clock)))
			}
			if s, _ := fx.alert(t); !s.Firing || s.Crossings != 1 {
				t.Errorf("alert state = %+v, want firing once", s)
			}
			if ok, _ := sent(fx.slack); ok != 1 {
				t.Errorf("Slack sent %d, want 1", ok)
			}
			if ok, _ := sent(fx.pd); ok != 1 {
				t.Errorf("PagerDuty sent %d, want 1", ok)
			}
		})
	}
}

// One disputed charge pages at once, once: a dispute has a deadline.
func TestADisputedChargeAlertsTheTeamOnce(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	snap := catalog.SubscriptionSnapshot{ID: "sub-d", Version: 3, Status: "active", Reason: "charge purchase-cs_d disputed",
		Order: catalog.Order{PlanCode: "ultimate"}}
	in, err := cloudevent.New(context.Background(), "evt_dispute/disputed", catalog.SourcePaymentResult, catalog.PaymentDisputed, "sub-d", snap)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // a redelivery
		if err := fx.f.Handle(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	slack, pd := fx.slack.Calls(), fx.pd.Calls()
	if len(slack) != 1 || len(pd) != 1 {
		t.Fatalf("%d Slack and %d PagerDuty calls, want one each", len(slack), len(pd))
	}
	if body := fmt.Sprint(pd[0].Body); !strings.Contains(body, "sub-d") || !strings.Contains(body, "disputed") || pd[0].Body["dedup_key"] != "dispute-"+cloudevent.Key(in) {
		t.Fatalf("PagerDuty got %s, want the subscription and the dispute named", pd[0].Body)
	}
	if state, found := storetest.Lookup[AlertState](t, fx.st, store.Alerts, alertID); found && state.Firing {
		t.Fatal("a dispute moved the payment-failure window's alert")
	}
}
