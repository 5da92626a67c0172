package notifications

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/gitlab"
	"fulfillment/shared/adapters/mail"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/clock"
	"fulfillment/shared/domain/notice"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/logging"
	"fulfillment/shared/testsupport/logbuf"
	"fulfillment/shared/testsupport/mailpit"
	"fulfillment/shared/testsupport/storetest"
	"fulfillment/shared/testsupport/testdouble"
)

func TestMain(m *testing.M) { storetest.RunTests(m) }

var now = time.Date(2026, 4, 15, 10, 0, 0, 0, time.UTC)

type fixture struct {
	logs *logbuf.Buffer
	st   *store.Store
	mp   *mailpit.Mailpit
	gl   *testdouble.GitLab
	f    *Function
}

func setup(t testing.TB, mailpitFlags ...string) fixture {
	t.Helper()
	ctx := context.Background()
	mp, err := mailpit.Start(ctx, t.TempDir(), nil, mailpitFlags...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mp.Stop)
	gl, err := testdouble.StartGitLab("127.0.0.1:0", []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gl.Close() })
	sender, err := mail.New(mail.Config{Host: "127.0.0.1", Port: mp.SMTPPort, StartTLS: "none", From: "billing@fulfillment.test", FromName: "GitLab Billing",
		Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.Open(t, "notify")
	logs := &logbuf.Buffer{}
	var f *Function
	links := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.ServeUnsubscribe(w, r) }))
	t.Cleanup(links.Close)
	f = New(Deps{Store: st, Publisher: &pubsub.Recorder{}, DeadLetterTopic: "notifications-dead-letter", Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Mailer: sender, InApp: gitlab.NewNotices(gl.URL(), testdouble.GitLabAdminToken, nil), Clock: clock.Func(func() time.Time { return now }),
		Policy: subscription.DefaultPolicy(), PortalURL: "https://portal.test", MessageIDDomain: "fulfillment.test",
		PreferencesKey: []byte("preferences-test-key"), UnsubscribeURL: links.URL + UnsubscribePath})
	return fixture{logs: logs, st: st, mp: mp, gl: gl, f: f}
}

func snapshotEvent(t *testing.T, id, typ string, mut func(*catalog.SubscriptionSnapshot)) event.Event {
	t.Helper()
	start := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	s := catalog.SubscriptionSnapshot{ID: "sub-cs_1", Version: 2, Status: "active", PurchaseID: "cs_1",
		Order:     catalog.Order{PlanCode: "premium", Seats: 10, Deployment: catalog.DeploymentSaaS, NamespaceID: "4242", AutoRenew: true, TermMonths: 12},
		Customer:  catalog.Customer{ProviderCustomerID: "cus_1", Email: "ada@example.com", Name: "Ada"},
		TermStart: start, TermEnd: start.AddDate(1, 0, 0)}
	if mut != nil {
		mut(&s)
	}
	e, err := cloudevent.New(context.Background(), id, catalog.SourcePaymentResult, typ, s.ID, s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// waitMessages polls Mailpit until it holds n messages (and checks it
// still holds n a moment later: none arrives twice).
func (fx fixture) waitMessages(t *testing.T, n int) []mailpit.Summary {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	var got []mailpit.Summary
	for time.Now().Before(deadline) {
		var err error
		got, err = fx.mp.Messages(ctx)
		if err == nil && len(got) >= n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	got, err := fx.mp.Messages(ctx)
	if err != nil || len(got) != n {
		t.Fatalf("Mailpit holds %d messages (%v), want %d: %+v", len(got), err, n, got)
	}
	return got
}

func TestPurchaseConfirmationArrivesOnceAlthoughDeliveredThrice(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	in := snapshotEvent(t, "evt-activated-1", catalog.SubscriptionActivated, func(s *catalog.SubscriptionSnapshot) {
		s.Customer.Name = `<script>alert(1)</script>Ada & Co`
	})
	for range 3 {
		if err := fx.f.Handle(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	msgs := fx.waitMessages(t, 1)
	m, err := fx.mp.Message(ctx, msgs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Receipt for your GitLab Premium subscription: $3,480.00" || len(m.To) != 1 || m.To[0].Address != "ada@example.com" ||
		m.From.Address != "billing@fulfillment.test" || m.MessageID != MessageID(in, notice.PurchaseConfirmation, "fulfillment.test") {
		t.Fatalf("message %+v", m.Summary)
	}
	if !strings.Contains(m.Text, "Amount paid:   $3,480.00") || !strings.Contains(m.Text, "2026-01-15 to 2027-01-15") {
		t.Fatalf("text part:\n%s", m.Text)
	}
	if strings.Contains(m.HTML, "<script>") || !strings.Contains(m.HTML, "&lt;script&gt;alert(1)&lt;/script&gt;Ada &amp; Co") {
		t.Fatalf("the customer's name is not escaped in the HTML part:\n%s", m.HTML)
	}
	h, err := fx.mp.Headers(ctx, m.ID)
	if err != nil || h[HeaderKind][0] != string(notice.PurchaseConfirmation) || h[HeaderSubscription][0] != "sub-cs_1" {
		t.Fatalf("headers %v %v", h, err)
	}
}

// A send that succeeded is recorded at once: a redelivery whose first
// attempt sent the e-mail but never committed (a crash, a lost
// transaction) finds the record and sends nothing.
func TestASentNoticeIsNotSentAgainWhenItsDeliveryDidNotCommit(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	in := snapshotEvent(t, "evt-renewed-1", catalog.SubscriptionRenewed, nil)
	d, err := notice.Decide(notice.Input{Type: in.Type(), Data: in.Data(), Now: now, Policy: subscription.DefaultPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.f.send(fx.logged(), in, d); err != nil { // the effect of a delivery that then died
		t.Fatal(err)
	}
	if err := fx.f.Handle(ctx, in); err != nil { // the redelivery
		t.Fatal(err)
	}
	fx.waitMessages(t, 1)
}

// A notice parked by a delivery that then died belongs to the sweep: the
// redelivery, with the server back, leaves it parked rather than send it
// beside a sweep that may be sending it too; the sweep sends it once.
func TestARedeliveryLeavesANoticeParkedByADeliveryThatDiedToTheSweep(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	in := snapshotEvent(t, "evt-suspended-2", catalog.SubscriptionSuspended, func(s *catalog.SubscriptionSnapshot) { s.Status = "suspended" })
	id := MessageID(in, notice.Suspended, "fulfillment.test")
	d, err := notice.Decide(notice.Input{Type: in.Type(), Data: in.Data(), Now: now, Policy: subscription.DefaultPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	fx.mp.Stop()
	if err := fx.f.send(fx.logged(), in, d); err != nil { // the effect of a delivery that then died: parked
		t.Fatal(err)
	}
	if err := fx.mp.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fx.f.Handle(ctx, in); err != nil { // the redelivery
		t.Fatal(err)
	}
	fx.waitMessages(t, 0)
	if _, parked, err := fx.st.PendingNotice(ctx, id); err != nil || !parked {
		t.Fatalf("parked %t %v after the redelivery, want it still the sweep's", parked, err)
	}
	fx.sweepConcurrently(t, 1)
	if msgs := fx.waitMessages(t, 1); msgs[0].MessageID != id {
		t.Errorf("the sweep sent <%s>, want <%s>", msgs[0].MessageID, id)
	}
}

// An SMTP outage longer than Pub/Sub's redelivery budget: every delivery
// finds the server down, parks the notice and is acknowledged (no dead
// letter waiting for a person); once the server is back, the sweep sends it
// exactly once, with the event's Message-ID, however many sweeps and
// redeliveries run.
func TestAnSMTPOutageLongerThanTheRedeliveryBudgetLosesNoNotice(t *testing.T) {
	fx := setup(t)
	fx.f.Processor.MaxDeliveryAttempts = 3
	ctx := context.Background()
	in := snapshotEvent(t, "evt-suspended-1", catalog.SubscriptionSuspended, func(s *catalog.SubscriptionSnapshot) { s.Status = "suspended" })
	id := MessageID(in, notice.Suspended, "fulfillment.test")
	fx.mp.Stop()
	for range 5 { // more deliveries than the budget allows
		if err := fx.f.Handle(ctx, in); err != nil {
			t.Fatalf("SMTP down: the notice is parked and the delivery acknowledged, got %v", err)
		}
	}
	p, parked, err := fx.st.PendingNotice(ctx, id)
	if err != nil || !parked || !strings.Contains(p.LastError, "unreachable") {
		t.Fatalf("parked %t (%+v) %v: want the notice parked after a failed send", parked, p, err)
	}
	if res, err := fx.f.SweepPendingNotices(fx.logged()); err != nil || res.StillPending != 1 || res.Sent != 0 {
		t.Fatalf("a sweep while the server is down: %+v %v", res, err)
	}
	var dl store.DeadLetter
	if err := fx.st.Get(ctx, nil, store.DeadLetters, Name+"_"+cloudevent.Key(in), &dl); !store.IsNotFound(err) {
		t.Fatalf("dead-lettered although parked: %+v %v", dl, err)
	}
	if err := fx.mp.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	fx.sweepConcurrently(t, 3)
	if err := fx.f.Handle(ctx, in); err != nil { // a late redelivery
		t.Fatal(err)
	}
	fx.sweepConcurrently(t, 1)
	msgs := fx.waitMessages(t, 1)
	if msgs[0].Subject != "Your GitLab Premium subscription is suspended" || msgs[0].MessageID != id {
		t.Fatalf("got %q <%s>, want the suspension notice <%s>", msgs[0].Subject, msgs[0].MessageID, id)
	}
	if _, parked, err := fx.st.PendingNotice(ctx, id); err != nil || parked {
		t.Fatalf("still parked after it was sent: %t %v", parked, err)
	}
	fx.noAddressLogged(t)
}

// A delivery tick (Cloud Scheduler's bare Pub/Sub message) starts a sweep.
func TestASchedulerTickSweepsParkedNotices(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	in := snapshotEvent(t, "evt-canceled-9", catalog.SubscriptionCanceled, func(s *catalog.SubscriptionSnapshot) { s.Status = "canceled" })
	fx.mp.Stop()
	if err := fx.f.Handle(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := fx.mp.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	tick := event.New()
	tick.SetID("scheduler-1")
	tick.SetSource("//pubsub.googleapis.com/projects/p/topics/subscription-events")
	tick.SetType(cloudevent.PubSubMessagePublished)
	_ = tick.SetData("application/json", []byte(`{"message":{"data":"e30=","messageId":"1"},"subscription":"projects/p/subscriptions/notifications"}`))
	if err := fx.f.Handle(ctx, tick); err != nil {
		t.Fatal(err)
	}
	if msgs := fx.waitMessages(t, 1); msgs[0].Subject != "Your GitLab Premium subscription is canceled" {
		t.Fatalf("subject %q", msgs[0].Subject)
	}
}

// sweepConcurrently runs n sweeps at once: they must not send one notice twice.
func (fx fixture) sweepConcurrently(t *testing.T, n int) {
	t.Helper()
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := fx.f.SweepPendingNotices(fx.logged())
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// logged is a context with the function's logger, as a delivery's has
// (the consumer puts it there): what a direct call logs is scanned too.
func (fx fixture) logged() context.Context {
	return logging.WithContext(context.Background(), fx.f.d.Logger)
}

// noAddressLogged checks that no line the function logged names the customer.
func (fx fixture) noAddressLogged(t *testing.T) {
	t.Helper()
	if logs := fx.logs.String(); strings.Contains(logs, "@example.com") {
		t.Fatalf("an address is in the logs:\n%s", logs)
	}
}

func TestAnOptOutSilencesNonEssentialNoticesOnly(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	if err := fx.st.SaveNoticePreference(ctx, "ADA@example.com", store.NoticePreference{OptOutNonEssential: true, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	notice := snapshotEvent(t, "evt-notice-1", catalog.SubscriptionRenewalNotice, func(s *catalog.SubscriptionSnapshot) { s.RenewalSeats = 10 })
	receipt := snapshotEvent(t, "evt-renewed-2", catalog.SubscriptionRenewed, nil)
	for _, e := range []event.Event{notice, receipt} {
		if err := fx.f.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	msgs := fx.waitMessages(t, 1)
	if !strings.HasPrefix(msgs[0].Subject, "Receipt: ") {
		t.Fatalf("sent %q; the receipt is essential, the renewal notice is not", msgs[0].Subject)
	}
}

func TestAReconciliationNoticeReachesTheCustomerAndGitLab(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	in := snapshotEvent(t, "evt-recon-1", catalog.SubscriptionReconciliationNotice, func(s *catalog.SubscriptionSnapshot) { s.SeatsOwed, s.MaxSeatsUsed = 4, 14 })
	if err := fx.f.Handle(ctx, in); err != nil {
		t.Fatal(err)
	}
	msgs := fx.waitMessages(t, 1)
	if msgs[0].Subject != "4 seats over your GitLab Premium subscription: $1,022.07 will be invoiced on 2026-04-22" {
		t.Fatalf("subject %q", msgs[0].Subject)
	}
	got, ok := fx.gl.UpcomingReconciliation(4242)
	if !ok || got.NextReconciliationDate != "2026-04-22" || got.DisplayAlertFrom != "2026-04-15" {
		t.Fatalf("GitLab holds %+v %t", got, ok)
	}
}

func TestAPaymentFailureTellsTheRetryDateFromTheSubscription(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	failedAt := time.Date(2027, 1, 8, 11, 0, 0, 0, time.UTC)
	sub := &subscription.Subscription{ID: "sub-cs_1", Status: subscription.PastDue, Currency: "eur",
		Order:    catalog.Order{PlanCode: "ultimate", Seats: 19, Deployment: catalog.DeploymentSaaS, NamespaceID: "4242"},
		Customer: catalog.Customer{Email: "ada@example.com", Name: "Ada"}, Dunning: subscription.Dunning{FailedAt: failedAt, InvoiceID: "in_1"}}
	if err := fx.st.RunTx(ctx, func(_ context.Context, tx store.Tx) error { return tx.Set(store.Subscriptions, sub.ID, sub) }); err != nil {
		t.Fatal(err)
	}
	in, err := cloudevent.New(ctx, "evt-failed-1", catalog.SourcePaymentResult, catalog.PaymentFailed, sub.ID,
		catalog.PaymentFailure{SubscriptionID: sub.ID, InvoiceID: "in_1", AmountCents: 2257200, OccurredAt: failedAt})
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.f.Handle(ctx, in); err != nil {
		t.Fatal(err)
	}
	msgs := fx.waitMessages(t, 1)
	m, err := fx.mp.Message(ctx, msgs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Your payment of €22,572.00 failed: we will try again on 2027-01-11" ||
		!strings.Contains(m.Text, "https://portal.test/subscriptions/sub-cs_1/payment_method") {
		t.Fatalf("%q\n%s", m.Subject, m.Text)
	}
}

func TestAnUndecodableEventIsDeadLettered(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	e := event.New()
	e.SetID("evt-bad")
	e.SetSource(catalog.SourcePaymentResult)
	e.SetType(catalog.SubscriptionActivated)
	_ = e.SetData("application/json", []byte(`{"id": 7}`))
	if err := fx.f.Handle(ctx, e); err != nil {
		t.Fatalf("a permanent failure is acknowledged after dead-lettering: %v", err)
	}
	var dl store.DeadLetter
	if err := fx.st.Get(ctx, nil, store.DeadLetters, Name+"_"+cloudevent.Key(e), &dl); err != nil || dl.EventID != "evt-bad" {
		t.Fatalf("dead letter %+v %v", dl, err)
	}
}

func TestConcurrentDeliveriesOfOneEventSendOnce(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	in := snapshotEvent(t, "evt-canceled-1", catalog.SubscriptionCanceled, func(s *catalog.SubscriptionSnapshot) { s.Status = "canceled" })
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- fx.f.Handle(ctx, in) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	fx.waitMessages(t, 1)
}

// A 5xx answer is no passing fault: the delivery is dead-lettered (for a
// person, replayable) and acknowledged, and nothing is recorded as sent.
func TestARecipientTheServerRefusesIsDeadLettered(t *testing.T) {
	fx := setup(t, "--smtp-allowed-recipients", "^someone-else@example\\.com$")
	ctx := context.Background()
	in := snapshotEvent(t, "evt-expired-1", catalog.SubscriptionExpired, func(s *catalog.SubscriptionSnapshot) { s.Status = "expired" })
	if err := fx.f.Handle(ctx, in); err != nil {
		t.Fatalf("a permanent failure is acknowledged after dead-lettering: %v", err)
	}
	var dl store.DeadLetter
	if err := fx.st.Get(ctx, nil, store.DeadLetters, Name+"_"+cloudevent.Key(in), &dl); err != nil || !strings.Contains(dl.Reason, "550") {
		t.Fatalf("dead letter %+v %v", dl, err)
	}
	if strings.Contains(dl.Reason, "ada@example.com") {
		t.Fatalf("the address is in the dead letter's reason: %s", dl.Reason)
	}
	if sent, err := fx.st.NoticeWasSent(ctx, MessageID(in, notice.Expired, "fulfillment.test")); err != nil || sent {
		t.Fatalf("recorded as sent: %t %v", sent, err)
	}
	fx.waitMessages(t, 0)
	fx.noAddressLogged(t)
}

// GitLab refusing the in-app notice (a wrong admin token) fails the
// delivery after the e-mail went out: the redeliveries do not send the
// e-mail again, and no log line of the failures names the customer.
func TestGitLabRefusingTheInAppNoticeDoesNotResendTheEmail(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	fx.f.d.InApp = gitlab.NewNotices(fx.gl.URL(), "not-the-admin-token", nil)
	in := snapshotEvent(t, "evt-recon-401", catalog.SubscriptionReconciliationNotice, func(s *catalog.SubscriptionSnapshot) { s.SeatsOwed, s.MaxSeatsUsed = 4, 14 })
	for range 3 {
		_ = fx.f.Handle(ctx, in) // refused: redelivered, or dead-lettered
	}
	if _, ok := fx.gl.UpcomingReconciliation(4242); ok {
		t.Fatal("GitLab stored a notice it refused")
	}
	if msgs := fx.waitMessages(t, 1); !strings.HasPrefix(msgs[0].Subject, "4 seats over your GitLab Premium subscription") {
		t.Fatalf("subject %q", msgs[0].Subject)
	}
	if logs := fx.logs.String(); !strings.Contains(logs, "failure") {
		t.Fatalf("the refusal was not logged:\n%s", logs)
	}
	fx.noAddressLogged(t)
}

// A customer opts out with the link of a renewal notice (the one-click POST
// a mail client sends for List-Unsubscribe-Post): the next renewal notice
// is muted, while payment failures, the grace warning and the suspension
// still arrive. Essential e-mails carry no opt-out link at all, a GET of
// the link (a mail scanner) changes nothing, and a forged link is refused.
func TestACustomerOptsOutByTheLinkAndStillGetsWhatIsEssential(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	fx.storeSubscription(t)
	fx.handle(t, snapshotEvent(t, "evt-notice-a", catalog.SubscriptionRenewalNotice, nil), fx.paymentFailed(t, "evt-failed-a"))
	msgs := fx.waitMessages(t, 2)
	link := ""
	for _, m := range msgs {
		h, err := fx.mp.Headers(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		switch kind := h[HeaderKind][0]; kind {
		case string(notice.RenewalNotice):
			if len(h[HeaderListUnsubscribe]) != 1 || h[HeaderListUnsubscribePost][0] != "List-Unsubscribe=One-Click" {
				t.Fatalf("renewal notice headers %v", h)
			}
			link = strings.Trim(h[HeaderListUnsubscribe][0], "<>")
		default:
			if len(h[HeaderListUnsubscribe]) != 0 || len(h[HeaderListUnsubscribePost]) != 0 {
				t.Fatalf("the essential %s carries an opt-out: %v", kind, h)
			}
		}
	}
	if link == "" || strings.Contains(link, "example.com") {
		t.Fatalf("opt-out link %q: want one, naming no address", link)
	}
	u, _ := url.Parse(link)
	forged := *u
	forged.RawQuery = url.Values{"token": {store.ContactKey("ada@example.com") + ".forged"}}.Encode()
	if code := post(t, forged.String()); code != http.StatusForbidden {
		t.Fatalf("a forged link answered %d, want 403", code)
	}
	if resp, err := http.Get(link); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET of the link: %v %v", resp, err)
	}
	if p, _ := fx.st.NoticePreferenceFor(ctx, "ada@example.com"); p.OptOutNonEssential {
		t.Fatal("a forged link or a GET opted the customer out")
	}
	if code := post(t, link); code != http.StatusOK {
		t.Fatalf("the one-click POST answered %d", code)
	}

	fx.handle(t, snapshotEvent(t, "evt-notice-b", catalog.SubscriptionRenewalNotice, nil), fx.paymentFailed(t, "evt-failed-b"),
		snapshotEvent(t, "evt-grace-b", catalog.SubscriptionGrace, func(s *catalog.SubscriptionSnapshot) { s.Status = "grace" }),
		snapshotEvent(t, "evt-suspended-b", catalog.SubscriptionSuspended, func(s *catalog.SubscriptionSnapshot) { s.Status = "suspended" }))
	got := map[string]int{}
	for _, m := range fx.waitMessages(t, 5) {
		h, _ := fx.mp.Headers(ctx, m.ID)
		got[h[HeaderKind][0]]++
	}
	want := map[string]int{string(notice.RenewalNotice): 1, string(notice.PaymentFailed): 2, string(notice.GraceWarning): 1, string(notice.Suspended): 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("received %v, want %v: the second renewal notice muted, every essential one sent", got, want)
	}
	fx.noAddressLogged(t)
}

// post sends RFC 8058's one-click unsubscribe to link.
func post(t *testing.T, link string) int {
	t.Helper()
	resp, err := http.Post(link, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (fx fixture) handle(t *testing.T, events ...event.Event) {
	t.Helper()
	for _, e := range events {
		if err := fx.f.Handle(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

// storeSubscription stores sub-cs_1, past due, for the payment failures.
func (fx fixture) storeSubscription(t *testing.T) {
	t.Helper()
	sub := &subscription.Subscription{ID: "sub-cs_1", Status: subscription.PastDue, Currency: "usd",
		Order:    catalog.Order{PlanCode: "premium", Seats: 10, Deployment: catalog.DeploymentSaaS, NamespaceID: "4242"},
		Customer: catalog.Customer{Email: "ada@example.com", Name: "Ada"}, Dunning: subscription.Dunning{FailedAt: now, InvoiceID: "in_1"}}
	if err := fx.st.RunTx(context.Background(), func(_ context.Context, tx store.Tx) error { return tx.Set(store.Subscriptions, sub.ID, sub) }); err != nil {
		t.Fatal(err)
	}
}

func (fx fixture) paymentFailed(t *testing.T, id string) event.Event {
	t.Helper()
	e, err := cloudevent.New(context.Background(), id, catalog.SourcePaymentResult, catalog.PaymentFailed, "sub-cs_1",
		catalog.PaymentFailure{SubscriptionID: "sub-cs_1", InvoiceID: "in_1", AmountCents: 348000, OccurredAt: now})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A server that refuses our sender (here: Mailpit requires a login we do
// not send, and answers MAIL FROM with 530) is our configuration to fix,
// not the customer's notice to lose: it is parked, not dead-lettered, the
// log says so at ERROR (alerted on), and once the credentials are fixed the
// sweep sends it once.
func TestANoticeTheServerRefusesForOurConfigurationIsParkedUntilFixed(t *testing.T) {
	passwords := filepath.Join(t.TempDir(), "smtp-passwords")
	if err := os.WriteFile(passwords, []byte("fulfillment:right-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fx := setup(t, "--smtp-auth-accept-any=false", "--smtp-auth-file", passwords)
	ctx := context.Background()
	in := snapshotEvent(t, "evt-grace-cfg", catalog.SubscriptionGrace, func(s *catalog.SubscriptionSnapshot) { s.Status = "grace" })
	fx.handle(t, in, in)
	if _, parked, err := fx.st.PendingNotice(ctx, MessageID(in, notice.GraceWarning, "fulfillment.test")); err != nil || !parked {
		t.Fatalf("parked %t %v", parked, err)
	}
	var dl store.DeadLetter
	if err := fx.st.Get(ctx, nil, store.DeadLetters, Name+"_"+cloudevent.Key(in), &dl); !store.IsNotFound(err) {
		t.Fatalf("dead-lettered for our own configuration: %+v %v", dl, err)
	}
	if logs := fx.logs.String(); !strings.Contains(logs, `"level":"ERROR","msg":"SMTP server cannot take the notice now; parked for the sweep"`) {
		t.Fatalf("the refusal of our sender was not logged as an error:\n%s", logs)
	}
	fixed, err := mail.New(mail.Config{Host: "127.0.0.1", Port: fx.mp.SMTPPort, StartTLS: "none", From: "billing@fulfillment.test",
		Username: "fulfillment", Password: "right-password", Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	fx.f.d.Mailer = fixed
	fx.sweepConcurrently(t, 2)
	if msgs := fx.waitMessages(t, 1); !strings.HasPrefix(msgs[0].Subject, "Action needed: ") {
		t.Fatalf("subject %q", msgs[0].Subject)
	}
	if logs := fx.logs.String(); strings.Contains(logs, "right-password") {
		t.Fatal("the SMTP password is in the logs")
	}
	fx.noAddressLogged(t)
}

// A server that accepts the connection and never answers uses up the
// delivery's time: the notice is parked all the same (the write after the
// send does not share the spent deadline), the redelivery leaves it to the
// sweep, and the sweep sends it once the server answers.
func TestANoticeWhoseSendTimesOutIsParkedAllTheSame(t *testing.T) {
	fx := setup(t)
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() { // accept, say nothing
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	working := fx.f.d.Mailer
	fx.f.d.Mailer, err = mail.New(mail.Config{Host: "127.0.0.1", Port: silent.Addr().(*net.TCPAddr).Port, StartTLS: "none",
		From: "billing@fulfillment.test", Timeout: time.Second}) // answers after the deadline below
	if err != nil {
		t.Fatal(err)
	}
	in := snapshotEvent(t, "evt-suspended-timeout", catalog.SubscriptionSuspended, func(s *catalog.SubscriptionSnapshot) { s.Status = "suspended" })
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond) // the delivery's deadline
	_ = fx.f.Handle(ctx, in)                                                       // its commit may miss the deadline too: redelivered
	cancel()
	if _, parked, err := fx.st.PendingNotice(context.Background(), MessageID(in, notice.Suspended, "fulfillment.test")); err != nil || !parked {
		t.Fatalf("parked %t %v: a timed-out send must park the notice", parked, err)
	}
	fx.handle(t, in) // the redelivery: the sweep owns it
	fx.f.d.Mailer = working
	fx.sweepConcurrently(t, 2)
	if msgs := fx.waitMessages(t, 1); msgs[0].Subject != "Your GitLab Premium subscription is suspended" {
		t.Fatalf("subject %q", msgs[0].Subject)
	}
}

// deferringMailer answers for one recipient as a server does about a full
// mailbox (452 at RCPT TO: temporary, about that recipient alone) and hands
// every other e-mail to the real sender.
type deferringMailer struct {
	Mailer
	recipient string
}

func (m deferringMailer) Send(ctx context.Context, msg mail.Message) error {
	if msg.To == m.recipient {
		return errors.New("mail.Send: smtp RCPT TO answered 452 (temporary)")
	}
	return m.Mailer.Send(ctx, msg)
}

// A parked notice the server still puts off for its recipient alone (a
// full mailbox) stays parked without holding up the others: the sweep goes
// on past it and sends the rest.
func TestAParkedNoticePutOffForItsRecipientDoesNotHoldUpTheOthers(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	var ids []string
	fx.mp.Stop()
	for i, to := range []string{"full@example.com", "ada@example.com", "grace@example.com"} {
		in := snapshotEvent(t, fmt.Sprint("evt-suspended-", i), catalog.SubscriptionSuspended, func(s *catalog.SubscriptionSnapshot) {
			s.Status, s.ID, s.Customer.Email = "suspended", fmt.Sprint("sub-", i), to
		})
		if err := fx.f.Handle(ctx, in); err != nil {
			t.Fatalf("SMTP down: want the notice parked, got %v", err)
		}
		ids = append(ids, MessageID(in, notice.Suspended, "fulfillment.test"))
	}
	if err := fx.mp.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	fx.f.d.Mailer = deferringMailer{Mailer: fx.f.d.Mailer, recipient: "full@example.com"}
	res, err := fx.f.SweepPendingNotices(fx.logged())
	if err != nil || res.Sent != 2 || res.StillPending != 1 {
		t.Fatalf("sweep: %+v %v; want 2 sent and the full mailbox's still pending", res, err)
	}
	msgs := fx.waitMessages(t, 2)
	for _, m := range msgs {
		if m.To[0].Address == "full@example.com" {
			t.Fatalf("the put-off notice was sent: %+v", m)
		}
	}
	if p, parked, err := fx.st.PendingNotice(ctx, ids[0]); err != nil || !parked || p.Refused || !strings.Contains(p.LastError, "452") {
		t.Fatalf("the put-off notice: parked %t %+v %v; want it parked, not refused, with its 452", parked, p, err)
	}
	fx.noAddressLogged(t)
}
