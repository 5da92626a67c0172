package renewal

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/idempotency"
	"fulfillment/shared/domain/ledger"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/failure"
	"fulfillment/shared/testsupport/emulator"
	"fulfillment/shared/testsupport/storetest"
	"fulfillment/shared/testsupport/testdouble"
)

var stripeMock *testdouble.StripeMock

func TestMain(m *testing.M) {
	var err error
	if stripeMock, err = testdouble.StartStripeMock(context.Background(), io.Discard); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := storetest.Run(m)
	stripeMock.Stop()
	os.Exit(code)
}

const deadLetterTopic = "dead-letters"

// t0 is the purchase time of every seeded subscription: the term runs
// 2026-01-15 .. 2027-01-15.
var t0 = time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

type fixture struct {
	st     *store.Store
	rec    *pubsub.Recorder
	stripe *testdouble.StripeProxy
	clock  *testClock
	f      *Function
}

type options struct {
	pageSize, pagesPerRun int
	stripeTimeout         time.Duration
	// statuses are what Stripe says of these invoices (stripe-mock answers
	// every invoice with one fixture).
	statuses map[string]stripe.InvoiceStatus
}

// statusBiller answers InvoiceState from its map (a paid invoice paid by
// "pi_"+its id), else asks stripe-mock.
type statusBiller struct {
	Biller
	statuses map[string]stripe.InvoiceStatus
}

func (b statusBiller) InvoiceState(ctx context.Context, invoiceID string) (stripe.InvoiceState, error) {
	if st, ok := b.statuses[invoiceID]; ok {
		inv := stripe.InvoiceState{Status: st}
		if st == stripe.InvoicePaid {
			inv.PaymentIntentID = "pi_" + invoiceID
		}
		return inv, nil
	}
	return b.Biller.InvoiceState(ctx, invoiceID)
}

func setup(t testing.TB, o options) fixture {
	t.Helper()
	st := storetest.Open(t, "renew")
	proxy, err := testdouble.StartStripeProxy("127.0.0.1:0", stripeMock.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	fx := fixture{st: st, rec: &pubsub.Recorder{}, stripe: proxy, clock: &testClock{t: t0}}
	var billing Biller = stripe.NewBilling("sk_test_123", proxy.URL(), o.stripeTimeout)
	if o.statuses != nil {
		billing = statusBiller{Biller: billing, statuses: o.statuses}
	}
	fx.f = New(Deps{
		Store: st, Publisher: fx.rec, Billing: billing,
		Policy: subscription.DefaultPolicy(), Clock: fx.clock, PageSize: o.pageSize, PagesPerRun: o.pagesPerRun,
		DeadLetterTopic: deadLetterTopic, Logger: slog.New(slog.DiscardHandler),
	})
	return fx
}

// seed stores a premium subscription bought at t0 with 10 seats, changed by edit.
func (fx fixture) seed(t *testing.T, id string, edit func(*subscription.Subscription)) *subscription.Subscription {
	t.Helper()
	o := catalog.Order{PlanCode: "premium", Seats: 10, Deployment: catalog.DeploymentSaaS, NamespaceID: "ns-" + id, AutoRenew: true, TermMonths: 12}
	s, _, err := subscription.Purchase(id, "cs_"+id, o, catalog.Customer{ProviderCustomerID: "cus_" + id}, true, t0)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(s)
	}
	if err := fx.st.DB.Set(context.Background(), store.Subscriptions, id, s); err != nil {
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

func (fx fixture) handle(t *testing.T, e event.Event) {
	t.Helper()
	if err := fx.f.Handle(context.Background(), e); err != nil {
		t.Fatalf("handle %s: %v", e.Type(), err)
	}
}

// review delivers the renewal-due event a tick would publish for id now.
func (fx fixture) review(t *testing.T, id string, at time.Time) {
	t.Helper()
	fx.clock.Set(at)
	s := fx.sub(t, id)
	due := catalog.Due{SubscriptionID: id, Version: s.Version}
	if s.NextReviewAt != nil {
		due.ReviewAt = *s.NextReviewAt
	}
	e, err := cloudevent.New(context.Background(), dueID(due), catalog.SourceRenewal, catalog.RenewalDue, id, due)
	if err != nil {
		t.Fatal(err)
	}
	fx.handle(t, e)
}

func (fx fixture) published(topic, typ string) []event.Event {
	var out []event.Event
	for _, e := range fx.rec.On(topic) {
		if e.Type() == typ {
			out = append(out, e)
		}
	}
	return out
}

// charged lists the Stripe calls that reached stripe-mock (not replays of
// an idempotency key) on a path ending in suffix with a key starting with prefix.
func (fx fixture) charged(suffix, keyPrefix string) []testdouble.Call {
	var out []testdouble.Call
	for _, c := range fx.stripe.Calls() {
		if c.Method == "POST" && strings.HasSuffix(c.Path, suffix) && strings.HasPrefix(c.Headers["Idempotency-Key"], keyPrefix) &&
			!c.Replayed && c.Status < 300 {
			out = append(out, c)
		}
	}
	return out
}

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func tickEvent(t testing.TB, messageID string) event.Event {
	t.Helper()
	e, err := cloudevent.ParsePush(emulator.RawPushBody([]byte(`{"job":"renewals"}`), nil, messageID))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestTickFansOutOneDueEventPerDueSubscriptionByPages(t *testing.T) {
	fx := setup(t, options{pageSize: 2, pagesPerRun: 2})
	due := map[string]bool{}
	for i := range 7 {
		id := fmt.Sprintf("due-%d", i)
		fx.seed(t, id, func(s *subscription.Subscription) { s.ReviewAt(t0.Add(-time.Duration(i) * time.Minute)) })
		due[id] = true
	}
	fx.seed(t, "later", func(s *subscription.Subscription) { s.ReviewAt(t0.Add(time.Hour)) })
	fx.seed(t, "never", func(s *subscription.Subscription) { s.NextReviewAt = nil })

	fx.handle(t, tickEvent(t, "tick-1"))
	pages := fx.published(catalog.TopicRenewalTicks, catalog.RenewalFanOutPage)
	if n := len(fx.published(catalog.TopicRenewalTicks, catalog.RenewalDue)); n != 4 || len(pages) != 1 {
		t.Fatalf("first delivery: %d due events and %d pages, want 4 and 1", n, len(pages))
	}
	fx.handle(t, pages[0])
	got := map[string]bool{}
	for _, e := range fx.published(catalog.TopicRenewalTicks, catalog.RenewalDue) {
		if got[e.Subject()] {
			t.Errorf("%s fanned out twice", e.Subject())
		}
		got[e.Subject()] = true
	}
	if fmt.Sprint(got) != fmt.Sprint(due) {
		t.Fatalf("fanned out %v, want %v", got, due)
	}
	if n := len(fx.published(catalog.TopicRenewalTicks, catalog.RenewalFanOutPage)); n != 1 {
		t.Fatalf("%d page events, want the fan-out to end", n)
	}
	// A fan-out whose last page is full ends on the next, empty, page.
	full := setup(t, options{pageSize: 2, pagesPerRun: 1})
	for i := range 2 {
		full.seed(t, fmt.Sprintf("full-%d", i), nil)
	}
	full.handle(t, tickEvent(t, "tick-full"))
	handOver := full.published(catalog.TopicRenewalTicks, catalog.RenewalFanOutPage)
	if len(handOver) != 1 {
		t.Fatalf("%d hand-over pages after a full page", len(handOver))
	}
	full.handle(t, handOver[0])
	if n := len(full.published(catalog.TopicRenewalTicks, catalog.RenewalFanOutPage)); n != 1 {
		t.Fatalf("an empty page handed over again: %d pages", n)
	}
	// A repeated tick publishes the same ids: renewal dedupes them.
	first := fx.published(catalog.TopicRenewalTicks, catalog.RenewalDue)[0]
	fx.handle(t, tickEvent(t, "tick-2"))
	if again := fx.published(catalog.TopicRenewalTicks, catalog.RenewalDue)[7]; again.ID() != first.ID() {
		t.Fatalf("repeated tick gave id %s, first gave %s", again.ID(), first.ID())
	}
}

func TestNoticeThenOneRenewalChargeAtTheMaxSeatsUsed(t *testing.T) {
	fx := setup(t, options{})
	s := fx.seed(t, "renew", func(s *subscription.Subscription) {
		s.RecordUsage(day("2026-05-01"), 12, t0)
		// The quarters were reconciled in time: the overage is left for the renewal.
		s.Reconciliation = subscription.Reconciliation{TermStart: s.TermStart, Quarter: 3, Billed: true}
	})

	fx.review(t, s.ID, day("2026-12-31")) // 15 days before term end: the notice only
	if n := len(fx.published(catalog.TopicSubscriptionEvents, catalog.SubscriptionRenewalNotice)); n != 1 {
		t.Fatalf("%d renewal notices", n)
	}
	if calls := fx.stripe.Calls(); len(calls) != 0 {
		t.Fatalf("Stripe called before the charge lead: %d calls", len(calls))
	}
	next := fx.sub(t, s.ID)
	if !next.NoticeSentFor.Equal(s.TermEnd) || next.NextReviewAt == nil || !next.NextReviewAt.Equal(day("2027-01-08")) {
		t.Fatalf("after the notice: notice for %s, next review %v", next.NoticeSentFor, next.NextReviewAt)
	}
	for range 3 { // the same due event twice, then a later tick
		fx.review(t, s.ID, day("2027-01-08"))
	}
	key := idempotency.Renewal(s.ID, s.TermEnd)
	items := fx.charged("/v1/invoiceitems", key)
	if len(items) != 1 || len(fx.charged("/v1/invoices", key)) != 1 || len(fx.charged("/pay", key)) != 1 {
		t.Fatalf("renewal charged %d items, %d invoices, %d payments; want 1 each", len(items), len(fx.charged("/v1/invoices", key)), len(fx.charged("/pay", key)))
	}
	if items[0].Body["amount"] != "417600" || items[0].Body["metadata[term_start]"] != "2027-01-15" {
		t.Errorf("renewal item %v, want 12 seats x 34800 for the term from 2027-01-15", items[0].Body)
	}
	raised := fx.sub(t, s.ID)
	// The payment's result comes by webhook; failing that, Stripe is asked
	// at term end.
	if !raised.RenewalPendingFor.Equal(s.TermEnd) || raised.RenewalSeats != 12 || raised.NextReviewAt == nil || !raised.NextReviewAt.Equal(s.TermEnd) {
		t.Fatalf("after the charge: pending for %s, seats %d, next review %v", raised.RenewalPendingFor, raised.RenewalSeats, raised.NextReviewAt)
	}
}

func TestAPayCallWithoutAnAnswerIsSettledByAskingStripe(t *testing.T) {
	fx := setup(t, options{stripeTimeout: 300 * time.Millisecond})
	s := fx.seed(t, "timeout", func(s *subscription.Subscription) { s.NoticeSentFor = s.TermEnd })
	fx.stripe.SlowAnswers("/pay", 10, 2*time.Second) // stripe-mock pays; the answer comes too late

	fx.review(t, s.ID, day("2027-01-08"))
	// The proxy records a lost call once it sees the client gone, a moment
	// after the client gave up: wait for the three.
	for deadline := time.Now().Add(5 * time.Second); len(fx.stripe.Calls()) < 5 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	unknown := fx.sub(t, s.ID)
	if unknown.ChargeUnknownSince.IsZero() || !unknown.RenewalPendingFor.IsZero() || unknown.RenewalInvoiceID == "" {
		t.Fatalf("after the timeout: unknown since %s, pending for %s, invoice %q", unknown.ChargeUnknownSince, unknown.RenewalPendingFor, unknown.RenewalInvoiceID)
	}
	key := idempotency.Renewal(s.ID, s.TermEnd)
	if n := len(fx.charged("/pay", key)); n != 1 {
		t.Fatalf("%d payments reached Stripe, want exactly the first", n)
	}
	fx.stripe.SlowAnswers("/pay", 0, 0)

	fx.review(t, s.ID, day("2027-01-08").Add(2*time.Hour)) // past CHARGE_SETTLE_AFTER
	var lookups int
	for _, c := range fx.stripe.Calls() {
		if c.Method == "GET" && c.Path == "/v1/invoices/"+unknown.RenewalInvoiceID {
			lookups++
		}
	}
	if lookups != 1 {
		t.Fatalf("%d invoice lookups, want 1", lookups)
	}
	if n := len(fx.charged("/pay", "")); n != 1 {
		t.Fatalf("%d payments reached Stripe after settling, want still 1 (the invoice was paid)", n)
	}
	settled := fx.sub(t, s.ID)
	if !settled.ChargeUnknownSince.IsZero() || !settled.RenewalPendingFor.Equal(s.TermEnd) || settled.RenewalInvoiceID != unknown.RenewalInvoiceID {
		t.Fatalf("after settling: unknown since %s, pending for %s", settled.ChargeUnknownSince, settled.RenewalPendingFor)
	}
}

func TestDunningRetriesThenGraceSuspensionAndCancellation(t *testing.T) {
	fx := setup(t, options{statuses: map[string]stripe.InvoiceStatus{"in_dunning": stripe.InvoiceOpen}})
	failedAt := day("2027-01-09")
	s := fx.seed(t, "dunning", func(s *subscription.Subscription) {
		s.NoticeSentFor = s.TermEnd
		s.MarkRenewalPending("in_dunning", day("2027-01-08"))
		s.ApplyPaymentFailed(s.TermEnd, failedAt, "in_dunning")
	})
	key := idempotency.Renewal(s.ID, s.TermEnd)
	for n, d := range []int{3, 7, 14} {
		fx.review(t, s.ID, failedAt.AddDate(0, 0, d))
		if got := len(fx.charged("/v1/invoices/in_dunning/pay", key+"-retry-")); got != n+1 {
			t.Fatalf("day %d: %d retries reached Stripe, want %d", d, got, n+1)
		}
	}
	steps := []struct {
		day    int
		status subscription.Status
		event  string
	}{{15, subscription.Grace, catalog.SubscriptionGrace}, {22, subscription.Suspended, catalog.SubscriptionSuspended}, {52, subscription.Canceled, catalog.SubscriptionCanceled}}
	for _, st := range steps {
		fx.review(t, s.ID, failedAt.AddDate(0, 0, st.day))
		if got := fx.sub(t, s.ID); got.Status != st.status {
			t.Fatalf("day %d: status %s, want %s", st.day, got.Status, st.status)
		}
		if n := len(fx.published(catalog.TopicSubscriptionEvents, st.event)); n != 1 {
			t.Fatalf("day %d: %d %s events", st.day, n, st.event)
		}
	}
	if got := fx.sub(t, s.ID); got.NextReviewAt != nil {
		t.Fatalf("a canceled subscription is still reviewed at %v", got.NextReviewAt)
	}
}

func TestQuarterlyReconciliationNoticeThenProratedInvoiceOnce(t *testing.T) {
	fx := setup(t, options{})
	s := fx.seed(t, "quarter", func(s *subscription.Subscription) { s.RecordUsage(day("2026-03-01"), 14, t0) })
	fx.review(t, s.ID, day("2026-04-15"))
	if n := len(fx.published(catalog.TopicSubscriptionEvents, catalog.SubscriptionReconciliationNotice)); n != 1 {
		t.Fatalf("%d reconciliation notices", n)
	}
	if len(fx.stripe.Calls()) != 0 {
		t.Fatal("charged before the 7 days after the notice")
	}
	for range 2 {
		fx.review(t, s.ID, day("2026-04-22"))
	}
	items := fx.charged("/v1/invoiceitems", "trueup-quarter-2026-01-15-q1")
	if len(items) != 1 || items[0].Body["amount"] != "102207" { // 4 x 34800 x 268/365 days
		t.Fatalf("true-up items %v", items)
	}
	got := fx.sub(t, s.ID)
	if got.Order.Seats != 14 || got.SeatsOwed != 0 || !got.Reconciliation.Billed {
		t.Fatalf("after the true-up: seats %d owed %d %+v", got.Order.Seats, got.SeatsOwed, got.Reconciliation)
	}
	changed := fx.published(catalog.TopicSubscriptionEvents, catalog.SubscriptionChanged)
	var snap catalog.SubscriptionSnapshot
	if len(changed) != 1 || changed[0].DataAs(&snap) != nil || snap.Order.Seats != 14 {
		t.Fatalf("changed events %d, snapshot seats %d", len(changed), snap.Order.Seats)
	}
}

func command(t *testing.T, id, typ string, cmd catalog.Command, at time.Time) event.Event {
	t.Helper()
	e, err := cloudevent.New(context.Background(), id, catalog.SourceOperator, typ, cmd.SubscriptionID, cmd)
	if err != nil {
		t.Fatal(err)
	}
	e.SetTime(at)
	return e
}

// outcome applies what payment-result does when the provider answers the
// charge under key: the outcome recorded, and a paid addition granted.
func (fx fixture) outcome(t *testing.T, id, key string, o ledger.Outcome, at time.Time) subscription.Change {
	t.Helper()
	_, c, err := fx.st.UpdateSubscription(context.Background(), id, store.Cause{Type: "test.outcome", ID: key + string(o), Key: "outcome_" + key + string(o)},
		func(s *subscription.Subscription) (subscription.Change, error) {
			return s.ApplyChargeOutcome(key, "", o, 0, at), nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestChangesAreChargedProratedOnce(t *testing.T) {
	fx := setup(t, options{})
	s := fx.seed(t, "changes", nil)
	mid := day("2026-07-16") // 183 of 365 days left
	add := command(t, "cmd-add", catalog.CommandAddSeats, catalog.Command{SubscriptionID: s.ID, Seats: 5}, mid)
	fx.handle(t, add)
	fx.handle(t, add) // redelivered
	if items := fx.charged("/v1/invoiceitems", "change-cmd-add"); len(items) != 1 || items[0].Body["amount"] != "87238" {
		t.Fatalf("add seats charged %v", items)
	}
	if got := fx.sub(t, s.ID); got.Order.Seats != 10 {
		t.Fatalf("seats granted before they were paid: %d", got.Order.Seats)
	}
	fx.outcome(t, s.ID, "change-cmd-add", ledger.Paid, mid) // invoice.paid, through payment-result
	fx.handle(t, command(t, "cmd-up", catalog.CommandChangePlan, catalog.Command{SubscriptionID: s.ID, PlanCode: "ultimate"}, mid))
	if items := fx.charged("/v1/invoiceitems", "change-cmd-up"); len(items) != 1 || items[0].Body["amount"] != "631726" { // 15 x 84000 x 183/365
		t.Fatalf("upgrade charged %v", items)
	}
	fx.outcome(t, s.ID, "change-cmd-up", ledger.Paid, mid)
	fx.handle(t, command(t, "cmd-down", catalog.CommandChangePlan, catalog.Command{SubscriptionID: s.ID, PlanCode: "premium"}, mid))
	fx.handle(t, command(t, "cmd-pack", catalog.CommandAddPack, catalog.Command{SubscriptionID: s.ID, PackKind: subscription.PackStorage, PackAmount: 10}, mid))
	fx.handle(t, command(t, "cmd-norenew", catalog.CommandSetAutoRenew, catalog.Command{SubscriptionID: s.ID, AutoRenew: false}, mid))
	if n := len(fx.charged("/v1/invoiceitems", "change-cmd-down")); n != 0 {
		t.Fatalf("a downgrade was charged %d times", n)
	}
	if items := fx.charged("/v1/invoiceitems", "change-cmd-pack"); len(items) != 1 || items[0].Body["amount"] != "3008" { // 6000 x 183/365
		t.Fatalf("pack charged %v", items)
	}
	fx.outcome(t, s.ID, "change-cmd-pack", ledger.Paid, mid)
	got := fx.sub(t, s.ID)
	if got.Order.Seats != 15 || got.Order.PlanCode != "ultimate" || got.PendingPlan != "premium" || got.Order.StorageGB != 10 || got.Order.AutoRenew {
		t.Fatalf("after the changes: %+v pending %q", got.Order, got.PendingPlan)
	}
	// The purchases are announced when paid (by payment-result): here the
	// downgrade and auto-renew off only.
	if n := len(fx.published(catalog.TopicSubscriptionEvents, catalog.SubscriptionChanged)); n != 2 {
		t.Fatalf("%d changed events, want 2", n)
	}
	for _, key := range []string{"change-cmd-add", "change-cmd-up", "change-cmd-pack"} {
		if ln := got.Ledger.Find(key); ln == nil || !ln.Granted || ln.InvoiceID == "" || ln.Outcome != ledger.Paid {
			t.Fatalf("ledger line %s: %+v", key, ln)
		}
	}
	// A change the subscription cannot take is dead-lettered, never charged.
	fx.handle(t, command(t, "cmd-bad", catalog.CommandAddSeats, catalog.Command{SubscriptionID: s.ID, Seats: -3}, mid))
	if dl := fx.rec.On(deadLetterTopic); len(dl) != 1 || dl[0].ID() != "cmd-bad" {
		t.Fatal("refused command not dead-lettered")
	}
	if n := len(fx.charged("/v1/invoiceitems", "change-cmd-bad")); n != 0 {
		t.Fatal("a refused change was charged")
	}
	// Auto-renew off: the subscription expires at term end.
	fx.review(t, s.ID, s.TermEnd)
	if got := fx.sub(t, s.ID); got.Status != subscription.Expired || len(fx.published(catalog.TopicSubscriptionEvents, catalog.SubscriptionExpired)) != 1 {
		t.Fatalf("at term end: %s", got.Status)
	}
}

func TestAStripeOutageAsksForTheDueEventAgainAndChargesOnce(t *testing.T) {
	fx := setup(t, options{})
	s := fx.seed(t, "outage", func(s *subscription.Subscription) {
		s.NoticeSentFor = s.TermEnd
		s.Reconciliation = subscription.Reconciliation{TermStart: s.TermStart, Quarter: 3, Billed: true}
	})
	fx.clock.Set(day("2027-01-08"))
	due := catalog.Due{SubscriptionID: s.ID, Version: s.Version, ReviewAt: *s.NextReviewAt}
	e, err := cloudevent.New(context.Background(), dueID(due), catalog.SourceRenewal, catalog.RenewalDue, s.ID, due)
	if err != nil {
		t.Fatal(err)
	}
	fx.stripe.FailNext(50, http.StatusServiceUnavailable)
	if err := fx.f.Handle(context.Background(), e); err == nil {
		t.Fatal("a Stripe outage was acknowledged")
	}
	if got := fx.sub(t, s.ID); !got.RenewalPendingFor.IsZero() || len(fx.rec.On(deadLetterTopic)) != 0 {
		t.Fatalf("after the outage: pending for %s, %d dead letters", got.RenewalPendingFor, len(fx.rec.On(deadLetterTopic)))
	}
	fx.stripe.Reset()
	fx.handle(t, e) // Pub/Sub redelivers the same due event
	key := idempotency.Renewal(s.ID, s.TermEnd)
	if n := len(fx.charged("/v1/invoices", key)); n != 1 || len(fx.charged("/pay", key)) != 1 {
		t.Fatalf("after the redelivery: %d invoices, %d payments; want 1 each", n, len(fx.charged("/pay", key)))
	}
	if got := fx.sub(t, s.ID); !got.RenewalPendingFor.Equal(s.TermEnd) {
		t.Fatalf("renewal not raised after the outage: %+v", got.RenewalPendingFor)
	}
}

func TestAPayCallThatNeverReachedStripeIsPaidOnceAfterAsking(t *testing.T) {
	fx := setup(t, options{stripeTimeout: 300 * time.Millisecond})
	s := fx.seed(t, "lost", func(s *subscription.Subscription) {
		s.NoticeSentFor = s.TermEnd
		s.Reconciliation = subscription.Reconciliation{TermStart: s.TermStart, Quarter: 3, Billed: true}
	})
	fx.stripe.LoseRequests("/pay", 3) // the first call and stripe-go's two retries

	fx.review(t, s.ID, day("2027-01-08"))
	// The proxy records a lost call once it sees the client gone, a moment
	// after the client gave up: wait for the three.
	for deadline := time.Now().Add(5 * time.Second); len(fx.stripe.Calls()) < 5 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	unknown := fx.sub(t, s.ID)
	if unknown.ChargeUnknownSince.IsZero() || len(fx.charged("/pay", "")) != 0 {
		t.Fatalf("after the lost call: unknown since %s, %d payments", unknown.ChargeUnknownSince, len(fx.charged("/pay", "")))
	}
	fx.review(t, s.ID, day("2027-01-08").Add(30*time.Minute)) // an early due event: nothing, and not recorded
	if len(fx.stripe.Calls()) != 5 {                          // item, invoice, 3 lost pay calls
		t.Fatalf("Stripe asked before the settle time: %d calls", len(fx.stripe.Calls()))
	}
	fx.review(t, s.ID, day("2027-01-08").Add(2*time.Hour))
	pays := fx.charged("/pay", "")
	if len(pays) != 1 || pays[0].Headers["Idempotency-Key"] != idempotency.RenewalSettle(s.ID, s.TermEnd) ||
		pays[0].Path != "/v1/invoices/"+unknown.RenewalInvoiceID+"/pay" {
		t.Fatalf("after asking Stripe: payments %v, want one under the settle key", pays)
	}
	if got := fx.sub(t, s.ID); !got.RenewalPendingFor.Equal(s.TermEnd) || !got.ChargeUnknownSince.IsZero() {
		t.Fatalf("not settled: pending for %s, unknown since %s", got.RenewalPendingFor, got.ChargeUnknownSince)
	}
}

// A step Stripe refuses for good is dead-lettered once per review as a
// renewal-due event, the subscription stays in the reviews (back within a
// day), and replaying the dead letter once the cause is fixed charges once.
func TestARefusedStepIsDeadLetteredReplayableAndKeptInReview(t *testing.T) {
	fx := setup(t, options{})
	s := fx.seed(t, "refused", func(s *subscription.Subscription) {
		s.NoticeSentFor = s.TermEnd
		s.Reconciliation = subscription.Reconciliation{TermStart: s.TermStart, Quarter: 3, Billed: true}
	})
	at := day("2027-01-08")
	fx.stripe.FailNext(50, http.StatusBadRequest)
	fx.review(t, s.ID, at)

	dead := fx.rec.On(deadLetterTopic)
	if len(dead) != 1 || dead[0].Type() != catalog.RenewalDue || dead[0].Subject() != s.ID {
		t.Fatalf("dead letters: %v; want one renewal-due event for %s", dead, s.ID)
	}
	if n := len(fx.stripe.Calls()); n != 1 {
		t.Fatalf("Stripe was called %d times for a refused step in one review, want 1", n)
	}
	got := fx.sub(t, s.ID)
	if got.NextReviewAt == nil || got.NextReviewAt.After(at.Add(failedStepRetry)) || !got.RenewalPendingFor.IsZero() {
		t.Fatalf("after the refusal: next review %v, pending for %s", got.NextReviewAt, got.RenewalPendingFor)
	}

	fx.stripe.Reset()
	fx.handle(t, dead[0]) // fulfillctl replay
	key := idempotency.Renewal(s.ID, s.TermEnd)
	if n := len(fx.charged("/pay", key)); n != 1 || !fx.sub(t, s.ID).RenewalPendingFor.Equal(s.TermEnd) {
		t.Fatalf("after the replay: %d payments, pending for %s", n, fx.sub(t, s.ID).RenewalPendingFor)
	}
}

// A charge's invoice holds only its own item: it is created empty and the
// item is added to it by id, so it cannot collect another charge's pending item.
func TestAChargeInvoicesOnlyItsOwnItem(t *testing.T) {
	fx := setup(t, options{})
	s := fx.seed(t, "own-item", func(s *subscription.Subscription) {
		s.NoticeSentFor = s.TermEnd
		s.Reconciliation = subscription.Reconciliation{TermStart: s.TermStart, Quarter: 3, Billed: true}
	})
	fx.review(t, s.ID, day("2027-01-08"))
	key := idempotency.Renewal(s.ID, s.TermEnd)
	invoices, items := fx.charged("/v1/invoices", key), fx.charged("/v1/invoiceitems", key)
	if len(invoices) != 1 || len(items) != 1 {
		t.Fatalf("%d invoices, %d items; want 1 each", len(invoices), len(items))
	}
	if got := invoices[0].Body["pending_invoice_items_behavior"]; got != "exclude" {
		t.Errorf("invoice pending_invoice_items_behavior = %v, want exclude", got)
	}
	invoiceID := fx.sub(t, s.ID).RenewalInvoiceID
	if got := items[0].Body["invoice"]; invoiceID == "" || got != invoiceID {
		t.Errorf("item added to invoice %v, want the charge's own %q", got, invoiceID)
	}
}

// A declined card on added seats grants nothing: the subscription keeps its
// seats, the line is open until the provider answers, then failed.
func TestADeclinedCardOnAddedSeatsGrantsNothing(t *testing.T) {
	fx := setup(t, options{})
	s := fx.seed(t, "declined", nil)
	mid := day("2026-07-16")
	fx.handle(t, command(t, "cmd-declined", catalog.CommandAddSeats, catalog.Command{SubscriptionID: s.ID, Seats: 5}, mid))
	key := idempotency.Change("cmd-declined")
	got := fx.sub(t, s.ID)
	ln := got.Ledger.Find(key)
	if got.Order.Seats != 10 || ln == nil || ln.Outcome != ledger.Open || ln.InvoiceID == "" || ln.Granted {
		t.Fatalf("after the charge: seats %d, line %+v", got.Order.Seats, ln)
	}
	if n := len(fx.published(catalog.TopicSubscriptionEvents, catalog.SubscriptionChanged)); n != 0 {
		t.Fatalf("%d changed events before payment", n)
	}
	var ref store.PaymentRef
	if err := fx.st.Get(context.Background(), nil, store.PaymentRefs, ln.InvoiceID, &ref); err != nil || ref.Key != key || ref.SubscriptionID != s.ID {
		t.Fatalf("payment ref of %s: %+v %v", ln.InvoiceID, ref, err)
	}
	fx.outcome(t, s.ID, key, ledger.Failed, mid.Add(time.Minute)) // invoice.payment_failed
	got = fx.sub(t, s.ID)
	if ln := got.Ledger.Find(key); got.Order.Seats != 10 || ln.Outcome != ledger.Failed || ln.Granted {
		t.Fatalf("after the decline: seats %d, line %+v", got.Order.Seats, ln)
	}
}

// quoteChecker checks, at each charge, that the ledger already holds the
// line it charges, with the same amount and currency.
type quoteChecker struct {
	Biller
	t       *testing.T
	st      *store.Store
	checked int
}

func (q *quoteChecker) Charge(ctx context.Context, b stripe.Bill) (string, error) {
	s, err := q.st.Subscription(ctx, nil, b.SubscriptionID)
	if err != nil {
		return "", err
	}
	ln := s.Ledger.Find(b.Key)
	if ln == nil || ln.Outcome != ledger.Quoted || ln.AmountCents != b.AmountCents || ln.Currency != b.Currency || ln.Description != b.Description {
		q.t.Errorf("charge %s of %d %s made with stored line %+v", b.Key, b.AmountCents, b.Currency, ln)
	}
	q.checked++
	return q.Biller.Charge(ctx, b)
}

// Every charge is quoted and stored before Stripe is called, and Stripe is
// asked for exactly the stored amount.
func TestTheLedgerHoldsTheQuoteBeforeAnyStripeCall(t *testing.T) {
	fx := setup(t, options{})
	checker := &quoteChecker{Biller: fx.f.d.Billing, t: t, st: fx.st}
	fx.f.d.Billing = checker
	s := fx.seed(t, "quoted", func(s *subscription.Subscription) {
		s.RecordUsage(day("2026-03-01"), 12, t0)
		s.NoticeSentFor = s.TermEnd
	})
	fx.review(t, s.ID, day("2026-04-15")) // quarter 1 notice: 2 seats owed
	fx.review(t, s.ID, day("2026-04-22")) // their true-up
	fx.handle(t, command(t, "cmd-q-seats", catalog.CommandAddSeats, catalog.Command{SubscriptionID: s.ID, Seats: 3}, day("2026-07-16")))
	fx.handle(t, command(t, "cmd-q-pack", catalog.CommandAddPack, catalog.Command{SubscriptionID: s.ID, PackKind: subscription.PackCompute, PackAmount: 1000}, day("2026-07-16")))
	fx.review(t, s.ID, day("2026-07-15")) // quarter 2: nothing owed
	fx.review(t, s.ID, day("2026-10-15"))
	fx.review(t, s.ID, day("2027-01-08")) // the renewal
	got := fx.sub(t, s.ID)
	keys := []string{idempotency.TrueUp(s.ID, s.TermStart, 1), "change-cmd-q-seats", "change-cmd-q-pack", idempotency.Renewal(s.ID, s.TermEnd)}
	if checker.checked != len(keys) {
		t.Fatalf("%d charges made, want %d", checker.checked, len(keys))
	}
	for _, key := range keys {
		ln := got.Ledger.Find(key)
		items := fx.charged("/v1/invoiceitems", key)
		// Sent (open), or, for an addition unanswered a day later, settled
		// by asking Stripe (stripe-mock's invoices are paid).
		if ln == nil || len(items) != 1 || items[0].Body["amount"] != fmt.Sprint(ln.AmountCents) || ln.AmountCents == 0 ||
			(ln.Outcome != ledger.Open && ln.Outcome != ledger.Paid) || ln.InvoiceID == "" {
			t.Fatalf("charge %s: line %+v, items %v", key, ln, items)
		}
	}
}

// The notice of owed seats, then the customer buying them: the true-up has
// nothing left to bill, and the quarter is reconciled with no charge.
func TestATrueUpAfterTheOwedSeatsWereBoughtBillsNothing(t *testing.T) {
	fx := setup(t, options{})
	s := fx.seed(t, "bought", func(s *subscription.Subscription) { s.RecordUsage(day("2026-03-01"), 14, t0) })
	fx.review(t, s.ID, day("2026-04-15"))
	if got := fx.sub(t, s.ID); got.Reconciliation.Seats != 4 {
		t.Fatalf("noticed %d seats, want 4", got.Reconciliation.Seats)
	}
	at := day("2026-04-16")
	fx.handle(t, command(t, "cmd-bought", catalog.CommandAddSeats, catalog.Command{SubscriptionID: s.ID, Seats: 4}, at))
	fx.outcome(t, s.ID, "change-cmd-bought", ledger.Paid, at)
	fx.review(t, s.ID, day("2026-04-22"))
	if items := fx.charged("/v1/invoiceitems", "trueup-"); len(items) != 0 {
		t.Fatalf("the bought seats were billed again by the true-up: %v", items)
	}
	got := fx.sub(t, s.ID)
	if got.Order.Seats != 14 || !got.Reconciliation.Billed || got.Reconciliation.Seats != 0 || got.SeatsOwed != 0 ||
		got.Ledger.Find(idempotency.TrueUp(s.ID, s.TermStart, 1)) != nil {
		t.Fatalf("after the true-up: seats %d, %+v, owed %d", got.Order.Seats, got.Reconciliation, got.SeatsOwed)
	}
	// Bought but not yet paid counts too: a true-up does not bill a seat
	// charge still awaiting its answer.
	fx2 := setup(t, options{})
	s2 := fx2.seed(t, "sent", func(s *subscription.Subscription) { s.RecordUsage(day("2026-03-01"), 14, t0) })
	fx2.review(t, s2.ID, day("2026-04-15"))
	fx2.handle(t, command(t, "cmd-sent", catalog.CommandAddSeats, catalog.Command{SubscriptionID: s2.ID, Seats: 3}, at))
	fx2.review(t, s2.ID, day("2026-04-22"))
	items := fx2.charged("/v1/invoiceitems", "trueup-")
	if len(items) != 1 || items[0].Body["amount"] != fmt.Sprint(fx2.sub(t, s2.ID).SeatsCents(1, day("2026-04-22"))) {
		t.Fatalf("true-up after 3 of 4 seats bought: %v, want 1 seat", items)
	}
}

// Turning auto-renew off stops the charge: the open renewal invoice is
// voided at Stripe, no dunning retry is made, and the term simply ends.
func TestAutoRenewOffVoidsTheOpenRenewalInvoiceAndStopsRetries(t *testing.T) {
	fx := setup(t, options{})
	failedAt := day("2027-01-09")
	s := fx.seed(t, "declined-renewal", func(s *subscription.Subscription) {
		s.NoticeSentFor = s.TermEnd
		s.Reconciliation = subscription.Reconciliation{TermStart: s.TermStart, Quarter: 3, Billed: true}
		key := idempotency.Renewal(s.ID, s.TermEnd)
		if _, err := s.QuoteRenewal(key, day("2027-01-08")); err != nil {
			t.Fatal(err)
		}
		s.ChargeSent(key, "in_open", false, day("2027-01-08"))
		s.MarkRenewalPending("in_open", day("2027-01-08"))
		s.ApplyPaymentFailed(s.TermEnd, failedAt, "in_open")
	})
	fx.handle(t, command(t, "cmd-off", catalog.CommandSetAutoRenew, catalog.Command{SubscriptionID: s.ID, AutoRenew: false}, failedAt.Add(time.Hour)))
	fx.review(t, s.ID, failedAt.Add(2*time.Hour))
	for _, d := range []int{3, 7, 14} {
		fx.review(t, s.ID, failedAt.AddDate(0, 0, d))
	}
	if pays := fx.charged("/pay", ""); len(pays) != 0 {
		t.Fatalf("%d payment retries after auto-renew was turned off", len(pays))
	}
	if voids := fx.charged("/v1/invoices/in_open/void", ""); len(voids) != 1 {
		t.Fatalf("%d voids of the open renewal invoice, want 1", len(voids))
	}
	got := fx.sub(t, s.ID)
	if got.Status != subscription.Expired || !got.RenewalPendingFor.IsZero() || got.RenewalInvoiceID != "" {
		t.Fatalf("after the void: %s, pending for %s, invoice %q", got.Status, got.RenewalPendingFor, got.RenewalInvoiceID)
	}
	if ln := got.Ledger.Find(idempotency.Renewal(s.ID, s.TermEnd)); ln == nil || ln.Outcome != ledger.Void {
		t.Fatalf("renewal line %+v, want void", ln)
	}

	// Before term end, on a raised renewal not yet answered: voided, and
	// the subscription expires at term end instead of renewing.
	raised := fx.seed(t, "raised", func(s *subscription.Subscription) {
		s.NoticeSentFor = s.TermEnd
		s.Reconciliation = subscription.Reconciliation{TermStart: s.TermStart, Quarter: 3, Billed: true}
		s.MarkRenewalPending("in_raised", day("2027-01-08"))
	})
	fx.handle(t, command(t, "cmd-off-raised", catalog.CommandSetAutoRenew, catalog.Command{SubscriptionID: raised.ID, AutoRenew: false}, day("2027-01-10")))
	fx.review(t, raised.ID, day("2027-01-10"))
	if voids := fx.charged("/v1/invoices/in_raised/void", ""); len(voids) != 1 {
		t.Fatalf("%d voids of the raised renewal invoice, want 1", len(voids))
	}
	if got := fx.sub(t, raised.ID); got.Status != subscription.Active || !got.RenewalPendingFor.IsZero() {
		t.Fatalf("after the void: %s, pending for %s", got.Status, got.RenewalPendingFor)
	}
	fx.review(t, raised.ID, raised.TermEnd)
	if got := fx.sub(t, raised.ID); got.Status != subscription.Expired {
		t.Fatalf("at term end: %s, want expired", got.Status)
	}
}

// Every charge of a subscription bought in euros is in euros.
func TestEveryBillIsInTheSubscriptionsCurrency(t *testing.T) {
	fx := setup(t, options{})
	s := fx.seed(t, "euros", func(s *subscription.Subscription) {
		s.Currency = "eur"
		s.RecordUsage(day("2026-03-01"), 12, t0)
		s.NoticeSentFor = s.TermEnd
	})
	fx.review(t, s.ID, day("2026-04-15"))
	fx.review(t, s.ID, day("2026-04-22")) // true-up
	mid := day("2026-07-16")
	fx.handle(t, command(t, "cmd-eur-seats", catalog.CommandAddSeats, catalog.Command{SubscriptionID: s.ID, Seats: 2}, mid))
	fx.handle(t, command(t, "cmd-eur-up", catalog.CommandChangePlan, catalog.Command{SubscriptionID: s.ID, PlanCode: "ultimate"}, mid))
	fx.handle(t, command(t, "cmd-eur-pack", catalog.CommandAddPack, catalog.Command{SubscriptionID: s.ID, PackKind: subscription.PackStorage, PackAmount: 10}, mid))
	fx.review(t, s.ID, day("2026-07-15"))
	fx.review(t, s.ID, day("2026-10-15"))
	fx.review(t, s.ID, day("2027-01-08")) // renewal
	items := fx.charged("/v1/invoiceitems", "")
	if len(items) != 5 {
		t.Fatalf("%d charges, want true-up, seats, upgrade, pack and renewal", len(items))
	}
	for _, it := range items {
		if it.Body["currency"] != "eur" {
			t.Errorf("charge %s in %v, want eur", it.Body["metadata[charge]"], it.Body["currency"])
		}
	}
	for _, ln := range fx.sub(t, s.ID).Ledger {
		if ln.Currency != "eur" {
			t.Errorf("ledger line %s in %s", ln.Key, ln.Currency)
		}
	}
}

// raisedRenewal seeds a subscription whose renewal was quoted and charged
// on invoiceID at the charge lead, with no answer applied since.
func (fx fixture) raisedRenewal(t *testing.T, id, invoiceID string) *subscription.Subscription {
	return fx.seed(t, id, func(s *subscription.Subscription) {
		s.NoticeSentFor = s.TermEnd
		s.Reconciliation = subscription.Reconciliation{TermStart: s.TermStart, Quarter: 3, Billed: true}
		key := idempotency.Renewal(s.ID, s.TermEnd)
		if _, err := s.QuoteRenewal(key, day("2027-01-08")); err != nil {
			t.Fatal(err)
		}
		s.ChargeSent(key, invoiceID, false, day("2027-01-08"))
		s.MarkRenewalPending(invoiceID, day("2027-01-08"))
	})
}

// A renewal paid at Stripe whose invoice.paid never arrived is found paid
// at term end and renews the term, as invoice.paid would have.
func TestARenewalPaidWhoseWebhookWasLostRenewsAtTermEnd(t *testing.T) {
	fx := setup(t, options{statuses: map[string]stripe.InvoiceStatus{"in_lost": stripe.InvoicePaid}})
	s := fx.raisedRenewal(t, "lost-paid", "in_lost")
	fx.review(t, s.ID, s.TermEnd)
	got := fx.sub(t, s.ID)
	if got.Status != subscription.Active || !got.TermStart.Equal(s.TermEnd) || !got.RenewalPendingFor.IsZero() {
		t.Fatalf("at term end: %s, term from %s, pending for %s; want active, renewed from %s", got.Status, got.TermStart, got.RenewalPendingFor, s.TermEnd)
	}
	if ln := got.Ledger.ByInvoice("in_lost"); ln == nil || ln.Outcome != ledger.Paid || !ln.Granted {
		t.Fatalf("renewal line %+v, want paid and granted", ln)
	}
	if n := len(fx.published(catalog.TopicSubscriptionEvents, catalog.SubscriptionRenewed)); n != 1 {
		t.Fatalf("%d renewed events, want 1", n)
	}
	// Its refund names only the payment intent (or the invoice): both find
	// the renewal line, as for a payment whose webhook came.
	for _, id := range []string{"pi_in_lost", "in_lost"} {
		ref, found, err := fx.st.FindPaymentRef(context.Background(), id)
		if err != nil || !found || ref.SubscriptionID != s.ID || ref.InvoiceID != "in_lost" || ref.Key != idempotency.Renewal(s.ID, s.TermEnd) {
			t.Errorf("payment ref of %s: %+v found=%t %v; want the renewal line of %s", id, ref, found, err, s.ID)
		}
	}
}

// A renewal neither paid nor failed by term end (its failure webhook lost)
// enters dunning, with the schedule counted from the charge, so the
// subscription converges instead of staying active past its term.
func TestARenewalUnansweredAtTermEndEntersDunning(t *testing.T) {
	fx := setup(t, options{statuses: map[string]stripe.InvoiceStatus{"in_unheard": stripe.InvoiceOpen}})
	s := fx.raisedRenewal(t, "unheard", "in_unheard")
	fx.review(t, s.ID, s.TermEnd)
	got := fx.sub(t, s.ID)
	if got.Status != subscription.PastDue || got.Dunning.InvoiceID != "in_unheard" || !got.Dunning.FailedAt.Equal(day("2027-01-08")) {
		t.Fatalf("at term end: %s, dunning %+v; want past due on in_unheard from 2027-01-08", got.Status, got.Dunning)
	}
}

// Before suspending, Stripe is asked: a retry paid whose webhook was lost
// renews the term instead of taking the features away.
func TestSuspensionAsksStripeFirstAndAPaidRetryRenews(t *testing.T) {
	statuses := map[string]stripe.InvoiceStatus{"in_retry": stripe.InvoiceOpen}
	fx := setup(t, options{statuses: statuses})
	failedAt := day("2027-01-09")
	s := fx.seed(t, "paid-retry", func(s *subscription.Subscription) {
		s.NoticeSentFor = s.TermEnd
		key := idempotency.Renewal(s.ID, s.TermEnd)
		if _, err := s.QuoteRenewal(key, day("2027-01-08")); err != nil {
			t.Fatal(err)
		}
		s.ChargeSent(key, "in_retry", false, day("2027-01-08"))
		s.MarkRenewalPending("in_retry", day("2027-01-08"))
		s.ApplyPaymentFailed(s.TermEnd, failedAt, "in_retry")
	})
	fx.review(t, s.ID, failedAt.AddDate(0, 0, 15))
	if got := fx.sub(t, s.ID); got.Status != subscription.Grace {
		t.Fatalf("day 15: %s, want grace", got.Status)
	}
	statuses["in_retry"] = stripe.InvoicePaid // the last retry went through; its webhook never came
	fx.review(t, s.ID, failedAt.AddDate(0, 0, 22))
	got := fx.sub(t, s.ID)
	if got.Status != subscription.Active || !got.TermStart.Equal(s.TermEnd) {
		t.Fatalf("day 22: %s, term from %s; want active and renewed, not suspended", got.Status, got.TermStart)
	}
	if n := len(fx.published(catalog.TopicSubscriptionEvents, catalog.SubscriptionSuspended)); n != 0 {
		t.Fatalf("%d suspensions of a paid subscription", n)
	}
}

// An addition asked for after the term ended (the expiry not run yet)
// costs nothing by proration: it is refused, never granted for free.
func TestAnUpgradeAfterTheTermEndedIsRefusedNotGrantedFree(t *testing.T) {
	fx := setup(t, options{})
	s := fx.seed(t, "ended", func(s *subscription.Subscription) { s.Order.AutoRenew = false })
	err := fx.f.Handle(context.Background(), command(t, "cmd-late-upgrade", catalog.CommandChangePlan,
		catalog.Command{SubscriptionID: s.ID, PlanCode: "ultimate"}, s.TermEnd.AddDate(0, 0, 2)))
	if err != nil && !failure.IsPermanent(err) {
		t.Fatalf("late upgrade: %v", err)
	}
	got := fx.sub(t, s.ID)
	if got.Order.PlanCode != "premium" || len(got.Ledger) != 0 {
		t.Fatalf("after an upgrade past term end: plan %s, ledger %+v; want premium, nothing quoted", got.Order.PlanCode, got.Ledger)
	}
	if n := len(fx.published(catalog.TopicSubscriptionEvents, catalog.SubscriptionChanged)); n != 0 {
		t.Fatalf("%d changed events", n)
	}
}

// A mid-term charge paid at Stripe whose invoice.paid was lost is granted
// when Stripe is asked a day later: a charge that went through is never dropped.
func TestAnAdditionPaidWhoseWebhookWasLostIsGrantedAfterAsking(t *testing.T) {
	fx := setup(t, options{})
	mid := day("2026-07-16")
	s := fx.seed(t, "lost-seats", func(s *subscription.Subscription) {
		s.Reconciliation = subscription.Reconciliation{TermStart: s.TermStart, Quarter: 2, Billed: true}
		s.Reschedule(mid, subscription.DefaultPolicy()) // next: the quarter 3 notice in October
	})
	fx.handle(t, command(t, "cmd-lost", catalog.CommandAddSeats, catalog.Command{SubscriptionID: s.ID, Seats: 5}, mid))
	key := idempotency.Change("cmd-lost")
	sent := fx.sub(t, s.ID)
	ln := sent.Ledger.Find(key)
	if ln == nil || ln.Outcome != ledger.Open {
		t.Fatalf("after the charge: line %+v", ln)
	}
	if sent.NextReviewAt == nil || sent.NextReviewAt.After(mid.Add(24*time.Hour)) {
		t.Fatalf("after the charge: next review %v, want one by a day after the charge", sent.NextReviewAt)
	}
	fx.f.d.Billing = statusBiller{Biller: fx.f.d.Billing, statuses: map[string]stripe.InvoiceStatus{ln.InvoiceID: stripe.InvoicePaid}}
	fx.review(t, s.ID, mid.Add(25*time.Hour))
	got := fx.sub(t, s.ID)
	if ln := got.Ledger.Find(key); got.Order.Seats != 15 || ln.Outcome != ledger.Paid || !ln.Granted {
		t.Fatalf("a day later: %d seats, line %+v; want 15 seats, paid and granted", got.Order.Seats, ln)
	}
}

// A review that catches up more steps than one review runs (a monthly
// subscription not reviewed for most of a year) leaves the subscription
// due for the next tick, never without a review.
func TestAReviewThatCannotCatchUpAtOnceStaysDue(t *testing.T) {
	fx := setup(t, options{})
	s := fx.seed(t, "monthly", func(s *subscription.Subscription) {
		s.Order.TermMonths = 1
		s.TermEnd = s.TermStart.AddDate(0, 1, 0)
	})
	late := day("2026-12-20")
	fx.review(t, s.ID, late)
	got := fx.sub(t, s.ID)
	if got.Status != subscription.Active || got.NextReviewAt == nil || got.NextReviewAt.After(late) {
		t.Fatalf("after one review: %s, term %s..%s, next review %v; want a review due at once", got.Status, got.TermStart, got.TermEnd, got.NextReviewAt)
	}
	if !got.TermEnd.After(late) {
		for range 10 {
			fx.review(t, s.ID, late)
		}
		if got := fx.sub(t, s.ID); !got.TermEnd.After(late) {
			t.Fatalf("after more reviews: term %s..%s, still behind %s", got.TermStart, got.TermEnd, late)
		}
	}
}

// A mid-term charge unanswered when the subscription ended is still asked
// about: paid, it is recorded paid (not granted, kept for a refund).
func TestAnAdditionUnansweredWhenTheTermEndedIsStillRecordedPaid(t *testing.T) {
	fx := setup(t, options{})
	s := fx.seed(t, "ended-seats", func(s *subscription.Subscription) { s.Order.AutoRenew = false })
	last := s.TermEnd.Add(-9 * time.Hour)
	fx.clock.Set(last)
	fx.handle(t, command(t, "cmd-last-day", catalog.CommandAddSeats, catalog.Command{SubscriptionID: s.ID, Seats: 1}, last))
	key := idempotency.Change("cmd-last-day")
	fx.review(t, s.ID, s.TermEnd)
	if got := fx.sub(t, s.ID); got.Status != subscription.Expired || got.Ledger.Find(key).Outcome != ledger.Open {
		t.Fatalf("at term end: %s, line %+v", got.Status, got.Ledger.Find(key))
	}
	fx.review(t, s.ID, last.Add(25*time.Hour)) // stripe-mock: the invoice is paid
	got := fx.sub(t, s.ID)
	if ln := got.Ledger.Find(key); ln.Outcome != ledger.Paid || ln.Granted || got.Order.Seats != 10 {
		t.Fatalf("a day later: line %+v, %d seats; want paid, not granted, 10 seats", ln, got.Order.Seats)
	}
}

// A true-up paid at Stripe whose invoice.paid was lost is recorded paid
// when Stripe is asked a day later.
func TestATrueUpPaidWhoseWebhookWasLostIsRecordedAfterAsking(t *testing.T) {
	fx := setup(t, options{})
	s := fx.seed(t, "lost-trueup", func(s *subscription.Subscription) { s.RecordUsage(day("2026-03-01"), 12, t0) })
	fx.review(t, s.ID, day("2026-04-15")) // the quarter 1 notice
	fx.review(t, s.ID, day("2026-04-22")) // its true-up, charged
	key := idempotency.TrueUp(s.ID, s.TermStart, 1)
	if ln := fx.sub(t, s.ID).Ledger.Find(key); ln == nil || ln.Outcome != ledger.Open {
		t.Fatalf("after the true-up: line %+v", ln)
	}
	fx.review(t, s.ID, day("2026-04-23")) // stripe-mock: the invoice is paid
	if ln := fx.sub(t, s.ID).Ledger.Find(key); ln.Outcome != ledger.Paid {
		t.Fatalf("a day later: line %+v, want paid", ln)
	}
}

// The review a sent charge asks for is a new renewal-due event, not one
// already handled at the same instant (due events are named by version and
// review time): otherwise it is dropped as a duplicate and the subscription
// is never reviewed again.
func TestTheReviewASentChargeAsksForIsNotTakenForADuplicate(t *testing.T) {
	fx := setup(t, options{})
	s := fx.seed(t, "same-instant", nil)
	fx.clock.Set(t0)
	first := fx.sub(t, s.ID)
	handled := dueID(catalog.Due{SubscriptionID: s.ID, Version: first.Version, ReviewAt: *first.NextReviewAt})
	fx.review(t, s.ID, t0)
	fx.handle(t, command(t, "cmd-same-instant", catalog.CommandAddSeats, catalog.Command{SubscriptionID: s.ID, Seats: 1}, t0))
	got := fx.sub(t, s.ID)
	if got.NextReviewAt == nil {
		t.Fatal("no review after the charge")
	}
	if next := dueID(catalog.Due{SubscriptionID: s.ID, Version: got.Version, ReviewAt: *got.NextReviewAt}); next == handled {
		t.Fatalf("the review after the charge is %s, the due event already handled", next)
	}
}

// A renewal raised and unanswered when the subscription was canceled (its
// purchase refunded) is still asked about: paid, it is recorded paid in
// the ledger, for an operator to refund.
func TestARenewalUnansweredWhenTheSubscriptionEndedIsRecordedPaid(t *testing.T) {
	fx := setup(t, options{statuses: map[string]stripe.InvoiceStatus{"in_orphan": stripe.InvoicePaid}})
	s := fx.raisedRenewal(t, "orphan", "in_orphan")
	_, _, err := fx.st.UpdateSubscription(context.Background(), s.ID, store.Cause{Type: "test", ID: "cancel", Key: "cancel"},
		func(s *subscription.Subscription) (subscription.Change, error) {
			return s.Cancel(day("2027-01-09"), "purchase refunded"), nil
		})
	if err != nil {
		t.Fatal(err)
	}
	fx.review(t, s.ID, day("2027-01-10"))
	got := fx.sub(t, s.ID)
	if ln := got.Ledger.ByInvoice("in_orphan"); got.Status != subscription.Canceled || ln == nil || ln.Outcome != ledger.Paid {
		t.Fatalf("a day later: %s, line %+v; want canceled, the renewal recorded paid", got.Status, ln)
	}
}
