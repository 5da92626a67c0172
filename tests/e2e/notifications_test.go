package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/functions/notifications"
	"fulfillment/infra/localstack"
	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/idempotency"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/testsupport/emulator"
	"fulfillment/shared/testsupport/mailpit"
	"fulfillment/shared/testsupport/testdouble"
)

// startNoticeYear is startYear with a short redelivery backoff, so the
// deliveries that fail while Mailpit is down come back within seconds.
func startNoticeYear(t *testing.T) *year {
	return startClockedStack(t, localstack.Options{Project: emulator.NewProject("notices"), MaximumBackoff: 2 * time.Second})
}

// mail is one message as the customer got it.
type mail struct {
	mailpit.Message
	kind string
}

// mailbox waits until Mailpit holds want messages for the subscription and
// still holds that many after a quiet spell (no late duplicate), and
// returns them by subject.
func (y *year) mailbox(want int) map[string][]mail {
	y.t.Helper()
	var msgs []mailpit.Summary
	stableSince := time.Time{}
	eventually(y.t, 60*time.Second, fmt.Sprintf("%d e-mails, then no more for 3 s", want), func() (bool, string) {
		got, err := y.s.Mailpit.Messages(background)
		if err != nil {
			return false, err.Error()
		}
		if len(got) != len(msgs) || len(got) != want {
			msgs, stableSince = got, time.Now()
			return false, fmt.Sprint(len(got), " e-mails: ", subjects(got))
		}
		return time.Since(stableSince) > 3*time.Second, fmt.Sprint(len(got), " e-mails: ", subjects(got))
	})
	out := map[string][]mail{}
	for _, s := range msgs {
		m, err := y.s.Mailpit.Message(background, s.ID)
		if err != nil {
			y.t.Fatal(err)
		}
		h, err := y.s.Mailpit.Headers(background, s.ID)
		if err != nil {
			y.t.Fatal(err)
		}
		if got := h[notifications.HeaderSubscription]; len(got) != 1 || got[0] != y.subID {
			y.t.Fatalf("%q is about %v, want %s", m.Subject, got, y.subID)
		}
		out[m.Subject] = append(out[m.Subject], mail{Message: m, kind: h[notifications.HeaderKind][0]})
	}
	return out
}

func subjects(ms []mailpit.Summary) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Subject)
	}
	sort.Strings(out)
	return out
}

// redeliverSubscriptionEvents publishes again every event payment-result
// and renewal announced on subscription-events, as Pub/Sub may: each
// reaches notifications a second time.
func (y *year) redeliverSubscriptionEvents() int {
	y.t.Helper()
	n := 0
	for _, consumer := range []string{"payment-result", "renewal"} {
		recs, err := store.All[store.ProcessedRecord](background, y.s.Store, docstore.Query{Collection: store.Processed,
			Where: []docstore.Filter{{Field: "consumer", Op: docstore.Eq, Value: consumer}}})
		if err != nil {
			y.t.Fatal(err)
		}
		for _, r := range recs {
			for _, o := range r.Outgoing {
				if o.Topic != catalog.TopicSubscriptionEvents {
					continue
				}
				var e event.Event
				if err := json.Unmarshal([]byte(o.Event), &e); err != nil {
					y.t.Fatal(err)
				}
				if e.Subject() != y.subID {
					continue
				}
				if err := y.s.PubSub.Publish(background, o.Topic, e); err != nil {
					y.t.Fatal(err)
				}
				n++
			}
		}
	}
	return n
}

// One customer's year of e-mail: every moment that concerns them, each
// once, although Stripe's webhook came twice, Mailpit was down when the
// renewal notice went out, and every subscription event was delivered to
// notifications a second time at the end.
func TestAYearOfCustomerNoticesThroughMailpit(t *testing.T) {
	y := startNoticeYear(t)
	y.p = purchase(t)
	y.p.NamespaceID = fmt.Sprint(1_000_000 + time.Now().UnixNano()%1_000_000) // GitLab's namespace ids are integers
	y.subID = y.p.SubscriptionID()
	var nsID int64
	fmt.Sscan(y.p.NamespaceID, &nsID)

	checkout := y.p.CheckoutCompleted(uniq("evt"), y.now())
	y.webhook(checkout)
	y.webhook(checkout) // Stripe retries a webhook it thinks was lost
	y.until("active", func(s *subscription.Subscription) bool { return s.Status == subscription.Active })

	// Usage rises to 14 seats: the quarter's notice, in the e-mail and in GitLab.
	for _, r := range []struct {
		date  string
		users int
	}{{"2026-02-01", 11}, {"2026-03-20", 14}} {
		y.seatReport(r.date, r.users)
	}
	y.until("4 seats owed", func(s *subscription.Subscription) bool { return s.SeatsOwed == 4 })
	y.setClock("2026-04-15T10:00:00Z")
	y.tick()
	eventually(t, 30*time.Second, "GitLab told of the upcoming reconciliation", func() (bool, string) {
		r, ok := y.s.GitLab.UpcomingReconciliation(nsID)
		return ok && r == testdouble.UpcomingReconciliation{NamespaceID: nsID, NextReconciliationDate: "2026-04-22", DisplayAlertFrom: "2026-04-15"}, fmt.Sprintf("%+v %t", r, ok)
	})
	y.setClock("2026-04-22T10:00:00Z")
	y.tick()
	y.tick()
	y.until("true-up billed, 14 seats", func(s *subscription.Subscription) bool { return s.Reconciliation.Billed && s.Order.Seats == 14 })
	y.setClock("2026-04-22T12:00:00Z")
	y.chargePaid(fmt.Sprintf("trueup-%s-2026-01-15-q1", y.subID)) // its receipt
	// Sent before the outage below, which is the renewal notice's alone: a
	// receipt parked then would wait for the next sweep.
	y.waitSubject("Receipt for your GitLab Premium true-up: $1,022.07 paid")

	// The renewal notice goes out while the mail server is down: it is
	// parked, and the sweep sends it once Mailpit is back.
	y.s.Mailpit.Stop()
	sub := y.mustSub()
	term1 := sub.TermEnd
	y.setClock("2026-12-31T10:00:00Z")
	y.tick()
	y.until("renewal notice sent", func(s *subscription.Subscription) bool { return s.NoticeSentFor.Equal(term1) })
	y.waitParkedNotices(1)
	if err := y.s.Mailpit.Resume(background); err != nil {
		t.Fatal(err)
	}
	y.sweepNotices()
	y.waitParkedNotices(0)

	// The renewal is declined once, then the first retry pays.
	y.s.Stripe.DeclinePayments(1)
	y.setClock("2027-01-08T10:00:00Z")
	y.tick()
	raised := y.until("renewal raised", func(s *subscription.Subscription) bool { return s.RenewalPendingFor.Equal(term1) })
	renewalKey := idempotency.Renewal(y.subID, term1)
	y.setClock("2027-01-08T11:00:00Z")
	y.invoiceResult(term1, raised.RenewalInvoiceID, 14*34800, false)
	y.until("past due", func(s *subscription.Subscription) bool { return s.Status == subscription.PastDue })
	y.setClock("2027-01-11T11:00:00Z")
	y.tick()
	y.until("retry 1 raised", func(s *subscription.Subscription) bool { return s.Dunning.Retries == 1 })
	if calls := y.stripeCalls(renewalKey + "-retry-1"); len(calls) != 1 {
		t.Fatalf("retry 1: %d Stripe calls", len(calls))
	}
	y.invoiceResult(term1, raised.RenewalInvoiceID, 14*34800, true)
	y.until("renewed", func(s *subscription.Subscription) bool {
		return s.Status == subscription.Active && s.TermStart.Equal(term1)
	})

	// Auto-renew off, then the term runs out.
	y.setClock("2027-03-01T10:00:00Z")
	y.command(catalog.CommandSetAutoRenew, catalog.Command{AutoRenew: false})
	y.until("auto-renew off", func(s *subscription.Subscription) bool { return !s.Order.AutoRenew })
	y.setClock("2028-01-15T10:00:00Z")
	y.tick()
	y.until("expired", func(s *subscription.Subscription) bool { return s.Status == subscription.Expired })

	// Every subscription event once more: nothing is sent twice.
	if n := y.redeliverSubscriptionEvents(); n < 8 {
		t.Fatalf("redelivered %d subscription events, want at least 8", n)
	}
	want := map[string]figures{ // subject -> what its parts show
		"Receipt for your GitLab Premium subscription: $3,480.00": {
			text: []string{"Seats:         10", "Amount paid:   $3,480.00"}, both: []string{"2026-01-15 to 2027-01-15", "$3,480.00"}},
		"4 seats over your GitLab Premium subscription: $1,022.07 will be invoiced on 2026-04-22": {
			text: []string{"Seats owed:    4", "Invoice date:  2026-04-22"}, both: []string{"$1,022.07", "2026-04-22"}},
		"Invoice for your GitLab Premium subscription: quarter 1 true-up: 4 seats added, $1,022.07 due": {
			text: []string{"Seats added:   4", "Seats now:     14", "Amount due:    $1,022.07"}, both: []string{"$1,022.07", "your receipt follows when it is paid"}},
		"Receipt for your GitLab Premium true-up: $1,022.07 paid": {
			text: []string{"Seats:         4", "Paid on:       2026-04-22", "Amount paid:   $1,022.07"}, both: []string{"$1,022.07", "quarter 1 true-up: 4 seats to 2027-01-15"}},
		"Your GitLab Premium subscription renews on 2027-01-15: $4,872.00 will be charged on 2027-01-08": {
			text: []string{"On 2027-01-08 we will charge $4,872.00"}, both: []string{"14 seats of GitLab Premium", "$4,872.00", "2027-01-08"}},
		"Your payment of $4,872.00 failed: we will try again on 2027-01-11": {
			text: []string{"We will try again on 2027-01-11."}, both: []string{"$4,872.00", "2027-01-11", "/subscriptions/" + y.subID + "/payment_method"}},
		"Receipt: your GitLab Premium subscription is renewed until 2028-01-15: $4,872.00": {
			text: []string{"Seats:         14", "Amount paid:   $4,872.00"}, both: []string{"2027-01-15 to 2028-01-15", "$4,872.00"}},
		"Your GitLab Premium subscription changed: auto-renew canceled": {
			text: []string{"Seats:         14"}, both: []string{"Nothing was charged for this change."}},
		"Your GitLab Premium subscription expired on 2028-01-15": {both: []string{"expired on 2028-01-15"}},
	}
	box := y.mailbox(len(want))
	for subject, f := range want {
		got := box[subject]
		if len(got) != 1 {
			t.Errorf("%q received %d times, want once", subject, len(got))
			continue
		}
		m := got[0]
		if len(m.To) != 1 || m.To[0].Address != y.p.Email {
			t.Errorf("%q went to %+v, want the billing contact only", subject, m.To)
		}
		f.check(t, subject, m.Message)
	}
	if len(box) != len(want) {
		t.Errorf("subjects %v, want exactly %d", keys(box), len(want))
	}
}

// waitParkedNotices waits until notifications holds n e-mails parked for
// its sweep: with Mailpit down, that is a send that was tried and failed.
func (y *year) waitParkedNotices(n int) {
	y.t.Helper()
	eventually(y.t, 30*time.Second, fmt.Sprintf("%d notices parked", n), func() (bool, string) {
		got, err := y.s.Store.PendingNotices(background, 100)
		return err == nil && len(got) == n, fmt.Sprint(len(got), " parked ", err)
	})
}

// sweepNotices publishes what Cloud Scheduler's notices-sweep job publishes.
func (y *year) sweepNotices() {
	y.t.Helper()
	if _, err := y.s.PubSub.PublishRaw(background, catalog.TopicSubscriptionEvents, []byte(`{"job":"notices-sweep"}`), nil); err != nil {
		y.t.Fatal(err)
	}
}

// figures are what an e-mail must show: text in its plain-text part, both
// in its plain-text and HTML parts alike (amounts, dates, links).
type figures struct{ text, both []string }

func (f figures) check(t *testing.T, subject string, m mailpit.Message) {
	t.Helper()
	if !strings.Contains(m.HTML, "<html>") {
		t.Errorf("%q has no HTML part", subject)
	}
	for _, s := range append(f.text, f.both...) {
		if !strings.Contains(m.Text, s) {
			t.Errorf("%q: the text part lacks %q:\n%s", subject, s, m.Text)
		}
	}
	for _, s := range f.both {
		if !strings.Contains(m.HTML, s) {
			t.Errorf("%q: the HTML part lacks %q:\n%s", subject, s, m.HTML)
		}
	}
}

func keys(m map[string][]mail) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// A renewal that is never paid, told through Mailpit at every step: each
// failed attempt with its next retry date, the last with no retry, the
// grace warning with its suspension date, the suspension with its
// cancellation date, the cancellation; each once although every
// subscription event reached notifications twice.
func TestADunningCustomerIsToldEachStepThroughMailpit(t *testing.T) {
	y := startNoticeYear(t)
	y.p = purchase(t)
	y.subID = y.p.SubscriptionID()
	y.webhook(y.p.CheckoutCompleted(uniq("evt"), y.now()))
	term1 := y.until("active", func(s *subscription.Subscription) bool { return s.Status == subscription.Active }).TermEnd

	y.s.Stripe.DeclinePayments(4)
	y.setClock("2026-12-31T10:00:00Z")
	y.tick() // the renewal notice
	y.setClock("2027-01-08T10:00:00Z")
	y.tick()
	raised := y.until("renewal raised", func(s *subscription.Subscription) bool { return s.RenewalPendingFor.Equal(term1) })
	const cents = 10 * 34800
	y.setClock("2027-01-08T11:00:00Z")
	y.invoiceResult(term1, raised.RenewalInvoiceID, cents, false)
	y.until("past due", func(s *subscription.Subscription) bool { return s.Status == subscription.PastDue })
	for n, day := range []string{"2027-01-11", "2027-01-15", "2027-01-22"} {
		y.setClock(day + "T11:00:00Z")
		y.tick()
		y.until(fmt.Sprintf("retry %d raised", n+1), func(s *subscription.Subscription) bool { return s.Dunning.Retries == n+1 })
		y.invoiceResult(term1, raised.RenewalInvoiceID, cents, false) // each retry declined
		y.waitNotices(fmt.Sprintf("failure of retry %d told", n+1), 3+n+1)
	}
	y.setClock("2027-01-23T11:00:00Z")
	y.tick()
	y.until("grace", func(s *subscription.Subscription) bool { return s.Status == subscription.Grace })
	y.setClock("2027-01-30T11:00:00Z")
	y.tick()
	y.until("suspended", func(s *subscription.Subscription) bool { return s.Status == subscription.Suspended })
	y.setClock("2027-03-01T11:00:00Z")
	y.tick()
	y.until("canceled", func(s *subscription.Subscription) bool { return s.Status == subscription.Canceled })
	if n := y.redeliverSubscriptionEvents(); n < 7 {
		t.Fatalf("redelivered %d subscription events, want at least 7", n)
	}

	card := "/subscriptions/" + y.subID + "/payment_method"
	want := map[string]figures{
		"Receipt for your GitLab Premium subscription: $3,480.00":                                        {both: []string{"$3,480.00"}},
		"Your GitLab Premium subscription renews on 2027-01-15: $3,480.00 will be charged on 2027-01-08": {both: []string{"$3,480.00", "2027-01-08"}},
		"Your payment of $3,480.00 failed: we will try again on 2027-01-11":                              {both: []string{"$3,480.00", "2027-01-11", card}},
		"Your payment of $3,480.00 failed: we will try again on 2027-01-15":                              {both: []string{"$3,480.00", "2027-01-15", card}},
		"Your payment of $3,480.00 failed: we will try again on 2027-01-22":                              {both: []string{"$3,480.00", "2027-01-22", card}},
		"Your payment of $3,480.00 failed: please update your card": {
			text: []string{"We will not try again: every retry has failed."}, both: []string{"$3,480.00", "every retry has failed", card}},
		"Action needed: your GitLab Premium subscription will be suspended on 2027-01-30": {
			both: []string{"2027-01-30", "10 seats fall back to", card}},
		"Your GitLab Premium subscription is suspended": {
			both: []string{"canceled on", "2027-03-01", "your data is kept", card}},
		"Your GitLab Premium subscription is canceled": {both: []string{y.subID, "Paid features are turned off"}},
	}
	box := y.mailbox(len(want))
	for subject, f := range want {
		if got := box[subject]; len(got) != 1 {
			t.Errorf("%q received %d times, want once", subject, len(got))
		} else {
			f.check(t, subject, got[0].Message)
		}
	}
	if len(box) != len(want) {
		t.Errorf("subjects %v, want exactly %d", keys(box), len(want))
	}
}

// A self-managed purchase: the activation code the customer activates their
// instance with is the one read from the e-mail.
func TestTheActivationCodeFromTheEmailActivatesTheInstance(t *testing.T) {
	y := startNoticeYear(t)
	y.p = purchase(t)
	y.p.NamespaceID, y.p.InstanceID = "", uniq("instance")
	y.subID = y.p.SubscriptionID()
	y.webhook(y.p.CheckoutCompleted(uniq("evt"), y.now()))
	box := y.mailbox(2)
	got := box["Your activation code for GitLab Premium"]
	if len(got) != 1 || len(box["Receipt for your GitLab Premium subscription: $3,480.00"]) != 1 {
		t.Fatalf("subjects %v, want the receipt and the activation code once each", keys(box))
	}
	code := regexp.MustCompile(`(?m)^    (\S+)\r?$`).FindStringSubmatch(got[0].Text)
	if code == nil || !strings.Contains(got[0].HTML, code[1]) {
		t.Fatalf("no code in the e-mail's parts:\n%s\n%s", got[0].Text, got[0].HTML)
	}
	instance := "uuid-" + uniq("gitlab")
	a := y.activate(code[1], instance)
	if a.key == "" || len(a.errors) != 0 {
		t.Fatalf("activation with the e-mailed code: key %q errors %v", a.key, a.errors)
	}
	if l := verifyKey(t, a.key); l.SubscriptionID != y.subID || l.InstanceID != instance || l.Seats != 10 {
		t.Fatalf("activated license %+v", l)
	}
}

// waitSubject waits until Mailpit holds an e-mail with this subject.
func (y *year) waitSubject(subject string) {
	y.t.Helper()
	eventually(y.t, 30*time.Second, "an e-mail "+subject, func() (bool, string) {
		got, err := y.s.Mailpit.Messages(background)
		return err == nil && slices.Contains(subjects(got), subject), fmt.Sprint(len(got), " e-mails: ", subjects(got), err)
	})
}

// waitNotices waits until Mailpit holds n e-mails: the step before was told.
func (y *year) waitNotices(what string, n int) {
	y.t.Helper()
	eventually(y.t, 30*time.Second, what, func() (bool, string) {
		got, err := y.s.Mailpit.Messages(background)
		return err == nil && len(got) >= n, fmt.Sprint(len(got), " e-mails: ", subjects(got), err)
	})
}
