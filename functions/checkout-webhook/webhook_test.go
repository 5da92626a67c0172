package checkoutwebhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/config"
	"fulfillment/shared/testsupport/counting"

	"fulfillment/shared/testsupport/storetest"
)

func TestMain(m *testing.M) { storetest.RunTests(m) }

const (
	secret    = "whsec_current"
	oldSecret = "whsec_previous"
)

type fixture struct {
	st  *store.Store
	rec *pubsub.Recorder
	fn  *Function
	url string
}

func setup(t testing.TB) fixture {
	t.Helper()
	return setupDeps(t, Deps{Logger: slog.New(slog.DiscardHandler)})
}

// setupDeps serves the webhook with d's settings on a fresh store and recorder.
func setupDeps(t testing.TB, d Deps) fixture {
	t.Helper()
	st := storetest.Open(t, "hook")
	rec := &pubsub.Recorder{}
	d.Store, d.Publisher, d.Secrets = st, rec, []string{secret, oldSecret}
	fn := New(d)
	srv := httptest.NewServer(fn)
	t.Cleanup(srv.Close)
	return fixture{st: st, rec: rec, fn: fn, url: srv.URL}
}

func checkoutPayload(id string, metadata map[string]string) []byte {
	if metadata == nil {
		metadata = map[string]string{"plan_code": "premium", "seats": "10", "namespace_id": "ns-1"}
	}
	return stripe.NewEvent(id, "checkout.session.completed", time.Now(),
		stripe.CheckoutSession("cs_"+id, "cus_1", "buyer@example.com", "paid", 34800, metadata))
}

// send posts payload with a Stripe-Signature header and returns the status
// and the decoded JSON answer.
func (fx fixture) send(t *testing.T, payload []byte, signature string, header ...string) (int, map[string]string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, fx.url, bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set("Stripe-Signature", signature)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var answer map[string]string
	_ = json.Unmarshal(raw, &answer)
	return resp.StatusCode, answer
}

func sign(payload []byte) string { return stripe.Sign(payload, time.Now(), secret) }

func (fx fixture) record(t *testing.T, id string) (Record, bool) {
	t.Helper()
	return storetest.Lookup[Record](t, fx.st, store.WebhookEvents, id)
}

// countRepeats writes the seen repeats' counts now, as the webhook does
// within its delay, and fails if any is left.
func (fx fixture) countRepeats(t *testing.T) {
	t.Helper()
	if left := fx.fn.counts.flush(context.Background()); left != 0 {
		t.Fatalf("%d repeat deliveries not counted", left)
	}
}

func (fx fixture) storedCount(t *testing.T) int {
	t.Helper()
	docs, err := fx.st.DB.Query(context.Background(), docstore.Query{Collection: store.WebhookEvents})
	if err != nil {
		t.Fatal(err)
	}
	return len(docs)
}

func TestSignedCheckoutIsStoredAndPublished(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	payload := checkoutPayload("evt_ok", nil)
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	code, answer := fx.send(t, payload, sign(payload), "traceparent", tp)
	if code != http.StatusOK || answer["status"] != AnswerPublished {
		t.Fatalf("answered %d %v", code, answer)
	}
	rec, ok := fx.record(t, "evt_ok")
	if !ok || rec.Status != StatusPublished || rec.Raw != string(payload) || rec.Deliveries != 1 ||
		rec.InternalType != catalog.CheckoutCompleted || rec.TraceParent != tp {
		t.Fatalf("webhook_events record = %+v", rec)
	}
	out := fx.rec.On(catalog.TopicProviderEvents)
	if len(out) != 1 {
		t.Fatalf("published %d events, want 1", len(out))
	}
	e := out[0]
	if e.ID() != "evt_ok" || e.Type() != catalog.CheckoutCompleted || e.Source() != catalog.SourceCheckoutWebhook ||
		e.Subject() != "sub-cs_evt_ok" || cloudevent.TraceParentOf(e) != tp {
		t.Errorf("event = %s", e)
	}
	var pe catalog.ProviderEvent
	if err := e.DataAs(&pe); err != nil {
		t.Fatal(err)
	}
	if pe.SubscriptionID != "sub-cs_evt_ok" || pe.Order == nil || pe.Order.Seats != 10 || pe.Customer.ProviderCustomerID != "cus_1" || pe.Invalid != "" {
		t.Errorf("provider event = %+v", pe)
	}
}

func TestPreviousSecretStillAccepted(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	payload := checkoutPayload("evt_rot", nil)
	if code, answer := fx.send(t, payload, stripe.Sign(payload, time.Now(), oldSecret)); code != http.StatusOK {
		t.Fatalf("answered %d %v", code, answer)
	}
	if n := len(fx.rec.On(catalog.TopicProviderEvents)); n != 1 {
		t.Errorf("published %d, want 1", n)
	}
}

func TestRefusedDeliveriesStoreNothing(t *testing.T) {
	t.Parallel()
	good := checkoutPayload("evt_refused", nil)
	big := append(checkoutPayload("evt_big", nil), bytes.Repeat([]byte(" "), MaxBodyBytes)...)
	notJSON := []byte("{not json")
	noID := stripe.NewEvent("", "checkout.session.completed", time.Now(), map[string]any{})
	cases := []struct {
		name      string
		payload   []byte
		signature string
		status    int
	}{
		{"wrong secret", good, stripe.Sign(good, time.Now(), "whsec_attacker"), http.StatusUnauthorized},
		{"tampered body", append([]byte(nil), bytes.Replace(good, []byte(`"10"`), []byte(`"99"`), 1)...), sign(good), http.StatusUnauthorized},
		{"expired signature", good, stripe.Sign(good, time.Now().Add(-10*time.Minute), secret), http.StatusUnauthorized},
		{"missing signature", good, "", http.StatusUnauthorized},
		{"over the size cap", big, sign(big), http.StatusRequestEntityTooLarge},
		{"malformed JSON", notJSON, sign(notJSON), http.StatusBadRequest},
		{"no event id", noID, sign(noID), http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fx := setup(t)
			if code, answer := fx.send(t, c.payload, c.signature); code != c.status {
				t.Fatalf("answered %d %v, want %d", code, answer, c.status)
			}
			if n := fx.storedCount(t); n != 0 {
				t.Errorf("%d webhook_events stored", n)
			}
			if n := len(fx.rec.Events); n != 0 {
				t.Errorf("published on %d topics", n)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	resp, err := http.Get(fx.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET answered %d", resp.StatusCode)
	}
}

func TestDuplicateDeliveryPublishesOnce(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	payload := checkoutPayload("evt_dup", nil)
	if code, answer := fx.send(t, payload, sign(payload)); code != http.StatusOK || answer["status"] != AnswerPublished {
		t.Fatalf("first delivery answered %d %v", code, answer)
	}
	if code, answer := fx.send(t, payload, sign(payload)); code != http.StatusOK || answer["status"] != AnswerDuplicate {
		t.Fatalf("second delivery answered %d %v", code, answer)
	}
	if n := len(fx.rec.On(catalog.TopicProviderEvents)); n != 1 {
		t.Errorf("published %d, want 1", n)
	}
	fx.countRepeats(t)
	if rec, _ := fx.record(t, "evt_dup"); rec.Deliveries != 2 || rec.Status != StatusPublished {
		t.Errorf("record = %+v", rec)
	}
}

func TestUnhandledTypeIsIgnored(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	payload := stripe.NewEvent("evt_cust", "customer.created", time.Now(), map[string]any{"id": "cus_1", "object": "customer"})
	code, answer := fx.send(t, payload, sign(payload))
	if code != http.StatusOK || answer["status"] != StatusIgnored {
		t.Fatalf("answered %d %v", code, answer)
	}
	if rec, ok := fx.record(t, "evt_cust"); !ok || rec.Status != StatusIgnored || rec.StripeType != "customer.created" {
		t.Errorf("record = %+v %v", rec, ok)
	}
	if n := len(fx.rec.Events); n != 0 {
		t.Errorf("published on %d topics", n)
	}
}

func TestUnreadableMetadataIsPublishedAsInvalid(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	payload := checkoutPayload("evt_meta", map[string]string{"plan_code": "premium", "seats": "ten", "namespace_id": "ns-1"})
	if code, answer := fx.send(t, payload, sign(payload)); code != http.StatusOK {
		t.Fatalf("answered %d %v", code, answer)
	}
	out := fx.rec.On(catalog.TopicProviderEvents)
	if len(out) != 1 {
		t.Fatalf("published %d, want 1", len(out))
	}
	var pe catalog.ProviderEvent
	if err := out[0].DataAs(&pe); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(pe.Invalid, "seats") || pe.ProviderEventID != "evt_meta" || pe.SubscriptionID != "sub-cs_evt_meta" {
		t.Errorf("provider event = %+v", pe)
	}
}

func TestPublisherOutageAnswers503ThenRetryPublishesOnce(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	payload := checkoutPayload("evt_outage", nil)
	fx.rec.Err = errors.New("pubsub unavailable")
	if code, answer := fx.send(t, payload, sign(payload)); code != http.StatusServiceUnavailable {
		t.Fatalf("answered %d %v during the outage, want 503", code, answer)
	}
	if rec, ok := fx.record(t, "evt_outage"); !ok || rec.Status != StatusStored {
		t.Fatalf("record during the outage = %+v %v, want stored", rec, ok)
	}
	fx.rec.Err = nil
	if code, answer := fx.send(t, payload, sign(payload)); code != http.StatusOK || answer["status"] != AnswerPublished {
		t.Fatalf("Stripe's retry answered %d %v", code, answer)
	}
	if code, answer := fx.send(t, payload, sign(payload)); code != http.StatusOK || answer["status"] != AnswerDuplicate {
		t.Fatalf("a later retry answered %d %v", code, answer)
	}
	out := fx.rec.On(catalog.TopicProviderEvents)
	if len(out) != 1 || out[0].ID() != "evt_outage" {
		t.Fatalf("published %v, want evt_outage once", out)
	}
	fx.countRepeats(t)
	if rec, _ := fx.record(t, "evt_outage"); rec.Status != StatusPublished || rec.Deliveries != 3 {
		t.Errorf("record = %+v", rec)
	}
}

// livePayload is a checkout event as Stripe sends it from live mode.
func livePayload(id string) []byte {
	return bytes.Replace(checkoutPayload(id, nil), []byte(`"livemode":false`), []byte(`"livemode":true`), 1)
}

// An event from the other Stripe mode than the one configured (a test-mode
// secret configured in production, or the reverse) is refused: 400, nothing
// stored or published, a warning logged.
func TestEventFromTheOtherModeIsRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		live    bool
		payload []byte
	}{
		{"test event, live webhook", true, checkoutPayload("evt_test_in_live", nil)},
		{"live event, test webhook", false, livePayload("evt_live_in_test")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			fx := setupDeps(t, Deps{Live: c.live, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
			code, answer := fx.send(t, c.payload, sign(c.payload))
			if code != http.StatusBadRequest || !strings.Contains(answer["error"], "livemode") {
				t.Fatalf("answered %d %v, want 400 naming livemode", code, answer)
			}
			if n := fx.storedCount(t); n != 0 {
				t.Errorf("%d webhook_events stored", n)
			}
			if n := len(fx.rec.Events); n != 0 {
				t.Errorf("published on %d topics", n)
			}
			if !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), "livemode") {
				t.Errorf("no warning logged: %s", logs.String())
			}
		})
	}
	t.Run("live event, live webhook", func(t *testing.T) {
		t.Parallel()
		fx := setupDeps(t, Deps{Live: true, Logger: slog.New(slog.DiscardHandler)})
		payload := livePayload("evt_live")
		if code, answer := fx.send(t, payload, sign(payload)); code != http.StatusOK || answer["status"] != AnswerPublished {
			t.Fatalf("answered %d %v", code, answer)
		}
		if rec, ok := fx.record(t, "evt_live"); !ok || !rec.Livemode {
			t.Errorf("record = %+v, %v", rec, ok)
		}
	})
}

func TestLivemodeSetting(t *testing.T) {
	t.Setenv("STRIPE_WEBHOOK_SECRETS", secret)
	t.Setenv("STRIPE_LIVEMODE", "")
	c, err := config.Read[Config]()
	if err != nil || c.Livemode != "test" || c.Live() {
		t.Fatalf("default: %+v, %v; want test mode", c, err)
	}
	t.Setenv("STRIPE_LIVEMODE", "live")
	if c, err := config.Read[Config](); err != nil || !c.Live() {
		t.Fatalf("live: %+v, %v", c, err)
	}
	t.Setenv("STRIPE_LIVEMODE", "true")
	if _, err := config.Read[Config](); err == nil || !strings.Contains(err.Error(), "STRIPE_LIVEMODE") {
		t.Fatalf("STRIPE_LIVEMODE=true: %v, want an error naming the setting", err)
	}
}

// countedFixture serves the webhook on storage and a publisher that count
// what it asks of them.
func countedFixture(t *testing.T) (fixture, *counting.DB, *counting.Publisher) {
	db := counting.NewDB(storetest.Open(t, "hook").DB)
	pub := counting.NewPublisher(&pubsub.Recorder{})
	fn := New(Deps{Store: store.New(db), Publisher: pub, Secrets: []string{secret}, Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(fn)
	t.Cleanup(srv.Close)
	return fixture{st: store.New(db), fn: fn, url: srv.URL}, db, pub
}

// An accepted event costs no read, one Firestore commit (the record, written
// after the publish) and one publish; its repeat in the same process a
// counted delivery and no publish.
func TestAcceptedEventIsOneCommitAndItsRepeatNoPublish(t *testing.T) {
	t.Parallel()
	fx, db, pub := countedFixture(t)
	payload := checkoutPayload("evt_once", nil)
	if code, answer := fx.send(t, payload, sign(payload)); code != http.StatusOK || answer["status"] != AnswerPublished {
		t.Fatalf("answered %d %v", code, answer)
	}
	if db.Reads() != 0 || db.Commits() != 1 || pub.Messages() != 1 {
		t.Fatalf("first delivery: %d reads, %d commits, %d publishes; want 0, 1 and 1", db.Reads(), db.Commits(), pub.Messages())
	}
	if code, answer := fx.send(t, payload, sign(payload)); code != http.StatusOK || answer["status"] != AnswerDuplicate {
		t.Fatalf("repeat answered %d %v", code, answer)
	}
	if pub.Messages() != 1 {
		t.Fatalf("the repeat published again: %d publishes", pub.Messages())
	}
	fx.countRepeats(t)
	if rec, _ := fx.record(t, "evt_once"); rec.Status != StatusPublished || rec.Deliveries != 2 {
		t.Fatalf("record = %+v", rec)
	}
}

// A repeat of an event this process saw recorded as published counts its
// delivery without reading the record (the seen hint); once the record is
// gone, the count that finds it gone drops the hint (the repeat it counted
// was answered for an event published before) and the next delivery takes
// the whole path again.
func TestRepeatOfASeenEventSkipsTheRead(t *testing.T) {
	t.Parallel()
	fx, db, pub := countedFixture(t)
	payload := checkoutPayload("evt_seen", nil)
	if code, answer := fx.send(t, payload, sign(payload)); code != http.StatusOK || answer["status"] != AnswerPublished {
		t.Fatalf("answered %d %v", code, answer)
	}
	reads := db.Reads()
	for range 2 {
		if code, answer := fx.send(t, payload, sign(payload)); code != http.StatusOK || answer["status"] != AnswerDuplicate {
			t.Fatalf("repeat answered %d %v", code, answer)
		}
	}
	if db.Reads() != reads || pub.Messages() != 1 {
		t.Errorf("two repeats of a seen event: %d reads, %d publishes in all; want no read, 1 publish", db.Reads()-reads, pub.Messages())
	}
	fx.countRepeats(t)
	if rec, _ := fx.record(t, "evt_seen"); rec.Deliveries != 3 || rec.Status != StatusPublished {
		t.Fatalf("record = %+v, want published with 3 deliveries", rec)
	}
	if err := db.Delete(context.Background(), store.WebhookEvents, "evt_seen"); err != nil {
		t.Fatal(err)
	}
	if code, answer := fx.send(t, payload, sign(payload)); code != http.StatusOK || answer["status"] != AnswerDuplicate {
		t.Fatalf("a repeat after the record was deleted: answered %d %v, want duplicate (the hint still held)", code, answer)
	}
	fx.countRepeats(t)
	if _, ok := fx.record(t, "evt_seen"); ok || pub.Messages() != 1 {
		t.Fatalf("the count of a gone record wrote it back (%v) or published (%d publishes)", ok, pub.Messages())
	}
	if code, answer := fx.send(t, payload, sign(payload)); code != http.StatusOK || answer["status"] != AnswerPublished {
		t.Fatalf("after the count found the record gone: answered %d %v, want published again", code, answer)
	}
	if rec, ok := fx.record(t, "evt_seen"); !ok || rec.Deliveries != 1 || pub.Messages() != 2 {
		t.Fatalf("after the record was deleted: record %+v (%v), %d publishes; want it written anew and published", rec, ok, pub.Messages())
	}
}

// A repeat that reaches another instance of the webhook (or races its first
// delivery) publishes the event again under the same id, which the
// consumers dedupe, is counted on the one record and answered duplicate;
// during a publisher outage it is still answered 200, since the event was
// published before.
func TestARepeatOnAnotherInstanceIsCountedOnTheOneRecord(t *testing.T) {
	t.Parallel()
	st := storetest.Open(t, "hook")
	rec := &pubsub.Recorder{}
	instance := func(p pubsub.Publisher) fixture {
		fn := New(Deps{Store: st, Publisher: p, Secrets: []string{secret}, Logger: slog.New(slog.DiscardHandler)})
		srv := httptest.NewServer(fn)
		t.Cleanup(srv.Close)
		return fixture{st: st, rec: rec, fn: fn, url: srv.URL}
	}
	a, b := instance(rec), instance(rec)
	payload := checkoutPayload("evt_two_instances", nil)
	if code, answer := a.send(t, payload, sign(payload)); code != http.StatusOK || answer["status"] != AnswerPublished {
		t.Fatalf("first delivery answered %d %v", code, answer)
	}
	for i := range 2 {
		if code, answer := b.send(t, payload, sign(payload)); code != http.StatusOK || answer["status"] != AnswerDuplicate {
			t.Fatalf("repeat %d on another instance answered %d %v", i+1, code, answer)
		}
	}
	out := rec.On(catalog.TopicProviderEvents)
	if len(out) != 2 || out[0].ID() != "evt_two_instances" || out[1].ID() != out[0].ID() {
		t.Fatalf("published %v; want the event twice under one id (the second instance's first sight), then no more", out)
	}
	down := &pubsub.Recorder{Err: errors.New("pubsub unavailable")}
	if code, answer := instance(down).send(t, payload, sign(payload)); code != http.StatusOK || answer["status"] != AnswerDuplicate {
		t.Fatalf("repeat during a publisher outage answered %d %v, want 200 duplicate", code, answer)
	}
	a.countRepeats(t)
	b.countRepeats(t)
	if r, _ := a.record(t, "evt_two_instances"); r.Status != StatusPublished || r.Deliveries != 4 {
		t.Fatalf("record = %+v, want published with 4 deliveries", r)
	}
	if n := a.storedCount(t); n != 1 {
		t.Fatalf("%d records, want 1", n)
	}
}

// Stripe retries while a first delivery is still in flight, and the
// webhook serves many requests at once: every delivery of every event,
// interleaved at concurrency 8, is answered 200, each event is kept once
// with all its deliveries counted and is published (a repeat racing its
// first delivery may publish it again under the same id, which the
// consumers dedupe). Under -race (make test-race) it also checks the
// webhook's shared state.
func TestConcurrentRepeatsAreCountedAndEachEventPublished(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	const events, repeats, workers = 40, 3, 8
	deliveries := make(chan []byte, events*repeats)
	for r := range repeats {
		for i := range events {
			deliveries <- checkoutPayload(fmt.Sprintf("evt_conc_%d", (i+r*7)%events), nil)
		}
	}
	close(deliveries)
	wrong := make(chan string, events*repeats)
	client := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for payload := range deliveries {
				req, err := http.NewRequest(http.MethodPost, fx.url, bytes.NewReader(payload))
				if err != nil {
					wrong <- err.Error()
					continue
				}
				req.Header.Set("Stripe-Signature", sign(payload))
				resp, err := client.Do(req)
				if err != nil {
					wrong <- err.Error()
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					wrong <- fmt.Sprintf("answered %d", resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	close(wrong)
	for w := range wrong {
		t.Error(w)
	}
	published := map[string]int{}
	for _, e := range fx.rec.On(catalog.TopicProviderEvents) {
		published[e.ID()]++
	}
	if n := fx.storedCount(t); n != events || len(published) != events {
		t.Fatalf("%d records, %d distinct events published; want %d of each", n, len(published), events)
	}
	fx.countRepeats(t)
	for i := range events {
		id := fmt.Sprintf("evt_conc_%d", i)
		if rec, _ := fx.record(t, id); rec.Status != StatusPublished || rec.Deliveries != repeats {
			t.Errorf("%s: status %q, %d deliveries counted, want published and %d", id, rec.Status, rec.Deliveries, repeats)
		}
	}
}
