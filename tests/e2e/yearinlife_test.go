package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fulfillment/functions/provisioning"
	seatusage "fulfillment/functions/seat-usage"
	"fulfillment/infra/demo"
	"fulfillment/infra/localstack"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/clock"
	"fulfillment/shared/domain/idempotency"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/testsupport/emulator"
	"fulfillment/shared/testsupport/logbuf"
	"fulfillment/shared/testsupport/testdouble"
)

// year is a stack of its own whose functions all read one clock file, so
// the test moves a subscription through two years in about a minute. It
// shares the emulators with the package's stack and keeps its own project.
type year struct {
	t     *testing.T
	s     *localstack.Stack
	clock string
	p     demo.Purchase
	subID string
}

func startYear(t *testing.T) *year {
	return startClockedStack(t, localstack.Options{Project: emulator.NewProject("year")})
}

// startClockedStack starts a stack of o's settings on a clock file of its
// own, set to the start of the year the tests walk through.
func startClockedStack(t *testing.T, o localstack.Options) *year {
	t.Helper()
	y := &year{t: t, clock: filepath.Join(t.TempDir(), "clock")}
	y.setClock("2026-01-15T10:00:00Z")
	ctx, cancel := ctxTimeout(3 * time.Minute)
	defer cancel()
	logs := &logbuf.Buffer{}
	o.ClockFile, o.Logs = y.clock, logs
	s, err := localstack.Start(ctx, o)
	if err != nil {
		t.Fatalf("stack %s: %v\n%s", o.Project, err, logs.String())
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() && os.Getenv("E2E_LOGS") != "" {
			t.Log(logs.String())
		}
	})
	y.s = s
	return y
}

func (y *year) setClock(rfc3339 string) time.Time {
	y.t.Helper()
	at, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		y.t.Fatal(err)
	}
	if err := clock.Set(y.clock, at); err != nil {
		y.t.Fatal(err)
	}
	return at
}

func (y *year) now() time.Time { return (&clock.File{Path: y.clock}).Now() }

// tick publishes a Scheduler tick at the clock's time.
func (y *year) tick() {
	y.t.Helper()
	if _, err := demo.Tick(background, y.s.PubSub); err != nil {
		y.t.Fatal(err)
	}
}

func (y *year) webhook(payload []byte) {
	y.t.Helper()
	r, err := demo.SendWebhook(background, y.s.URLs["checkout-webhook"], localstack.WebhookSecret, payload)
	if err != nil || r.Status != 200 {
		y.t.Fatalf("webhook answered %d %s %v", r.Status, r.Body, err)
	}
}

// until polls the subscription until cond holds.
func (y *year) until(what string, cond func(*subscription.Subscription) bool) *subscription.Subscription {
	y.t.Helper()
	var sub *subscription.Subscription
	eventually(y.t, 30*time.Second, what, func() (bool, string) {
		s, err := y.s.Store.Subscription(background, nil, y.subID)
		if err != nil {
			return false, err.Error()
		}
		sub = s
		return cond(s), fmt.Sprintf("status %s seats %d plan %s max %d owed %d recon %+v dunning %+v pending %s unknown %s",
			s.Status, s.Order.Seats, s.Order.PlanCode, s.MaxSeatsUsed, s.SeatsOwed, s.Reconciliation, s.Dunning, s.RenewalPendingFor, s.ChargeUnknownSince)
	})
	return sub
}

// provisioned waits for the n-th GitLab provisioning call of the namespace and returns its base_product.
func (y *year) provisioned(n int, plan string, seats int) map[string]any {
	y.t.Helper()
	var bp map[string]any
	eventually(y.t, 30*time.Second, fmt.Sprintf("GitLab provisioning call %d (%s, %d seats)", n, plan, seats), func() (bool, string) {
		calls := callsTo(y.s.GitLab.Calls(), gitlabPath(y.p.NamespaceID))
		if len(calls) < n {
			return false, fmt.Sprint(len(calls), " calls")
		}
		bp = baseProduct(calls[n-1])
		return len(calls) == n && bp["plan_code"] == plan && bp["seats"] == float64(seats), fmt.Sprint(len(calls), " calls, last ", baseProduct(calls[len(calls)-1]))
	})
	return bp
}

// crm waits until Salesforce holds the subscription with the given status, plan and seats.
func (y *year) crm(status, plan string, seats int) {
	y.t.Helper()
	eventually(y.t, 30*time.Second, fmt.Sprintf("CRM upsert %s %s %d", status, plan, seats), func() (bool, string) {
		rec, ok := y.s.Salesforce.Record("Fulfillment_Subscription__c", y.subID)
		return ok && rec["Status__c"] == status && rec["Plan__c"] == plan && rec["Seats__c"] == float64(seats), fmt.Sprint(rec)
	})
}

// stripeCalls lists the calls that reached Stripe (stripe-mock) with an
// idempotency key starting with prefix: replays of a stored answer charge nothing.
func (y *year) stripeCalls(prefix string) []testdouble.Call {
	var out []testdouble.Call
	for _, c := range y.s.Stripe.Calls() {
		if c.Method == "POST" && strings.HasPrefix(c.Headers["Idempotency-Key"], prefix) && charged(c) {
			out = append(out, c)
		}
	}
	return out
}

// charge asserts one item, one invoice and one payment under key, the item for cents.
func (y *year) charge(key string, cents int64) {
	y.t.Helper()
	var item testdouble.Call
	eventually(y.t, 30*time.Second, "Stripe charge "+key, func() (bool, string) {
		calls := y.stripeCalls(key + "-")
		for _, c := range calls {
			if c.Path == "/v1/invoiceitems" {
				item = c
			}
		}
		var seen []string
		for _, c := range calls {
			seen = append(seen, fmt.Sprintf("%s %s %d %s", c.Method, c.Path, c.Status, c.Headers["Idempotency-Key"]))
		}
		return len(calls) == 3, fmt.Sprint(len(calls), " calls: ", strings.Join(seen, "; "))
	})
	if item.Body["amount"] != fmt.Sprint(cents) || item.Body["metadata[subscription_id]"] != y.subID {
		y.t.Fatalf("%s: invoice item %v, want %d cents", key, item.Body, cents)
	}
	for _, step := range []string{"item", "invoice", "pay"} {
		if n := len(y.stripeCalls(key + "-" + step)); n != 1 {
			y.t.Fatalf("%s-%s reached Stripe %d times, want once", key, step, n)
		}
	}
}

func (y *year) seatReport(date string, users int) {
	y.t.Helper()
	r, err := demo.SendSeatReport(background, y.s.URLs["seat-usage"], localstack.SeatUsageTokenKey,
		seatusage.Report{Date: date, NamespaceID: y.p.NamespaceID, BillableUsersCount: users, MaxHistoricalUserCount: users})
	if err != nil || r.Status != 200 {
		y.t.Fatalf("seat report %s: %d %s %v", date, r.Status, r.Body, err)
	}
}

func (y *year) command(typ string, c catalog.Command) string {
	y.t.Helper()
	id := uniq("cmd")
	c.SubscriptionID = y.subID
	if err := demo.SendCommand(background, y.s.PubSub, id, typ, c, y.now()); err != nil {
		y.t.Fatal(err)
	}
	return id
}

func (y *year) invoiceResult(termStart time.Time, invoiceID string, cents int64, paid bool) {
	y.t.Helper()
	y.webhook(demo.InvoiceEventFor(uniq("evt"), invoiceID, y.p.CustomerID, y.subID, termStart, cents, paid, y.now()))
}

// chargePaid announces, as Stripe does by webhook, that the mid-term charge
// under key (a ledger line) was paid: stripe-mock sends no webhooks, and a
// purchase is granted only when its invoice is paid. The invoice carries the
// charge's key in its metadata, as Billing.Charge sets it.
func (y *year) chargePaid(key string) {
	y.t.Helper()
	sub := y.until("charge "+key+" sent", func(s *subscription.Subscription) bool {
		ln := s.Ledger.Find(key)
		return ln != nil && ln.InvoiceID != ""
	})
	ln := sub.Ledger.Find(key)
	inv := stripe.Invoice(ln.InvoiceID, y.p.CustomerID, y.subID, time.Time{}, ln.AmountCents, true)
	inv["metadata"] = map[string]string{stripe.MetaSubscriptionID: y.subID, stripe.MetaCharge: key}
	inv["currency"] = ln.Currency
	y.webhook(stripe.NewEvent(uniq("evt"), "invoice.paid", y.now(), inv))
}

func TestAYearInTheLifeOfASubscription(t *testing.T) {
	y := startYear(t)
	y.p = purchase(t)
	y.subID = y.p.SubscriptionID()

	// Purchase with 10 seats.
	y.webhook(y.p.CheckoutCompleted(uniq("evt"), y.now()))
	sub := y.until("active with 10 seats", func(s *subscription.Subscription) bool { return s.Status == subscription.Active })
	term1 := sub.TermEnd
	if sub.Order.Seats != 10 || sub.TermStart.Format(time.DateOnly) != "2026-01-15" || term1.Format(time.DateOnly) != "2027-01-15" {
		t.Fatalf("purchase: %+v term %s..%s", sub.Order, sub.TermStart, term1)
	}
	y.provisioned(1, "premium", 10)
	y.crm("active", "premium", 10)

	// Seat reports rising to 14, one late, one twice, one from before the term.
	for _, r := range []struct {
		date  string
		users int
	}{{"2026-02-01", 11}, {"2026-03-01", 13}, {"2026-02-15", 12}, {"2026-03-20", 14}, {"2026-03-20", 14}, {"2026-01-10", 40}} {
		y.seatReport(r.date, r.users)
	}
	y.until("max seats used 14, 4 owed", func(s *subscription.Subscription) bool { return s.MaxSeatsUsed == 14 && s.SeatsOwed == 4 })

	// Quarterly reconciliation: a notice on the quarter's date...
	y.setClock("2026-04-15T10:00:00Z")
	y.tick()
	y.until("reconciliation notice for 4 seats", func(s *subscription.Subscription) bool {
		return s.Reconciliation.Quarter == 1 && s.Reconciliation.Seats == 4 && !s.Reconciliation.Billed
	})
	if n := len(y.stripeCalls("trueup-")); n != 0 {
		t.Fatalf("true-up charged with the notice: %d calls", n)
	}
	// ...then 7 days later a prorated invoice for the 4 seats, and 14 provisioned.
	y.setClock("2026-04-22T10:00:00Z")
	y.tick()
	y.tick() // Scheduler may fire twice: nothing is charged twice
	y.until("true-up billed, 14 seats", func(s *subscription.Subscription) bool { return s.Reconciliation.Billed && s.Order.Seats == 14 })
	y.charge(fmt.Sprintf("trueup-%s-2026-01-15-q1", y.subID), 102207) // 4 x $348 x 268/365 days
	if bp := y.provisioned(2, "premium", 14); bp["max_seats_used"] != float64(14) {
		t.Fatalf("true-up provisioned %v, want max_seats_used 14", bp)
	}
	y.crm("active", "premium", 14)

	// Add 5 seats mid-term, charged for the rest of the term.
	y.setClock("2026-07-16T10:00:00Z")
	add := y.command(catalog.CommandAddSeats, catalog.Command{Seats: 5})
	y.charge("change-"+add, 87238) // 5 x $348 x 183/365
	y.chargePaid("change-" + add)  // granted when paid
	y.until("19 seats", func(s *subscription.Subscription) bool { return s.Order.Seats == 19 })
	y.provisioned(3, "premium", 19)
	y.crm("active", "premium", 19)

	// Upgrade to Ultimate: immediate, the price difference prorated.
	y.setClock("2026-08-01T10:00:00Z")
	up := y.command(catalog.CommandChangePlan, catalog.Command{PlanCode: "ultimate"})
	y.charge("change-"+up, 730225) // 19 x ($1188 - $348) x 167/365
	y.chargePaid("change-" + up)
	y.until("on ultimate", func(s *subscription.Subscription) bool { return s.Order.PlanCode == "ultimate" })
	y.provisioned(4, "ultimate", 19)
	y.crm("active", "ultimate", 19)

	// The renewal notice 15 days before term end; nothing charged yet.
	y.setClock("2026-12-31T10:00:00Z")
	y.tick()
	y.until("renewal notice sent", func(s *subscription.Subscription) bool { return s.NoticeSentFor.Equal(term1) })
	renewalKey := idempotency.Renewal(y.subID, term1)
	if n := len(y.stripeCalls(renewalKey)); n != 0 {
		t.Fatalf("renewal charged with the notice: %d calls", n)
	}
	y.history(catalog.SubscriptionRenewalNotice, 1)

	// The renewal a week before term end, at 19 seats, once. The card
	// declines it and the first retry; the second retry pays.
	y.s.Stripe.DeclinePayments(2)
	y.setClock("2027-01-08T10:00:00Z")
	y.tick()
	y.tick()
	raised := y.until("renewal raised", func(s *subscription.Subscription) bool { return s.RenewalPendingFor.Equal(term1) })
	y.charge(renewalKey, 19*118800)
	if raised.RenewalSeats != 19 || raised.RenewalPlan != "ultimate" || raised.RenewalInvoiceID == "" {
		t.Fatalf("renewal raised for %d seats of %s, invoice %q", raised.RenewalSeats, raised.RenewalPlan, raised.RenewalInvoiceID)
	}

	// The renewal payment fails: past_due, then retries on days 3 and 7...
	y.setClock("2027-01-08T11:00:00Z")
	y.invoiceResult(term1, raised.RenewalInvoiceID, 19*118800, false)
	y.until("past due", func(s *subscription.Subscription) bool { return s.Status == subscription.PastDue })
	y.crm("past_due", "ultimate", 19)
	y.retries(raised.RenewalInvoiceID, renewalKey, "2027-01-11T11:00:00Z", "2027-01-15T11:00:00Z")
	// ...and the second retry is paid: active again, the next term provisioned.
	y.invoiceResult(term1, raised.RenewalInvoiceID, 19*118800, true)
	renewed := y.until("renewed", func(s *subscription.Subscription) bool {
		return s.Status == subscription.Active && s.TermStart.Equal(term1)
	})
	term2 := renewed.TermEnd
	if renewed.Order.Seats != 19 || term2.Format(time.DateOnly) != "2028-01-15" || renewed.Dunning != (subscription.Dunning{}) || renewed.MaxSeatsUsed != 0 {
		t.Fatalf("renewed: %+v term end %s dunning %+v", renewed.Order, term2, renewed.Dunning)
	}
	if bp := y.provisioned(5, "ultimate", 19); bp["end_date"] != "2028-01-15" {
		t.Fatalf("renewal provisioned %v", bp)
	}
	y.crm("active", "ultimate", 19)

	// A year later the renewal fails again and is never paid: retries,
	// grace, suspension (deprovisioned, data kept), cancellation.
	y.s.Stripe.DeclinePayments(4)
	y.setClock("2028-01-08T10:00:00Z")
	y.tick()
	second := y.until("second renewal raised", func(s *subscription.Subscription) bool { return s.RenewalPendingFor.Equal(term2) })
	key2 := idempotency.Renewal(y.subID, term2)
	y.charge(key2, 19*118800)
	y.setClock("2028-01-08T11:00:00Z")
	y.invoiceResult(term2, second.RenewalInvoiceID, 19*118800, false)
	y.until("past due again", func(s *subscription.Subscription) bool { return s.Status == subscription.PastDue })
	y.retries(second.RenewalInvoiceID, key2, "2028-01-11T11:00:00Z", "2028-01-15T11:00:00Z", "2028-01-22T11:00:00Z")
	y.setClock("2028-01-23T11:00:00Z")
	y.tick()
	y.until("grace", func(s *subscription.Subscription) bool { return s.Status == subscription.Grace })
	y.crm("grace", "ultimate", 19)
	y.setClock("2028-01-30T11:00:00Z")
	y.tick()
	y.until("suspended", func(s *subscription.Subscription) bool { return s.Status == subscription.Suspended })
	if bp := y.provisioned(6, "free", 0); bp["auto_renew"] != false {
		t.Fatalf("suspension provisioned %v", bp)
	}
	y.crm("suspended", "ultimate", 19)
	// provisioning calls GitLab before it commits the entitlement: wait for it.
	eventually(t, 30*time.Second, "entitlement revoked after suspension", func() (bool, string) {
		var ent struct {
			Status provisioning.EntitlementStatus `firestore:"status"`
		}
		err := y.s.Store.Get(background, nil, store.Entitlements, y.subID, &ent)
		return err == nil && ent.Status == provisioning.EntitlementRevoked, fmt.Sprintf("%+v %v", ent, err)
	})
	y.setClock("2028-03-01T11:00:00Z")
	y.tick()
	canceled := y.until("canceled", func(s *subscription.Subscription) bool { return s.Status == subscription.Canceled })
	// GitLab already holds what cancellation provisions (free, 0 seats, since
	// the suspension): provisioning records the version and calls nobody.
	eventually(t, 30*time.Second, "entitlement at the cancellation's version", func() (bool, string) {
		var ent struct {
			Status  provisioning.EntitlementStatus `firestore:"status"`
			Version int64                          `firestore:"version"`
		}
		err := y.s.Store.Get(background, nil, store.Entitlements, y.subID, &ent)
		return err == nil && ent.Status == provisioning.EntitlementRevoked && ent.Version == canceled.Version, fmt.Sprintf("%+v %v", ent, err)
	})
	if bp := y.provisioned(6, "free", 0); bp["auto_renew"] != false {
		t.Fatalf("after cancellation GitLab holds %v", bp)
	}
	y.crm("canceled", "ultimate", 19)

	// Over the two years: every charge reached Stripe once per idempotency key.
	seen := map[string]int{}
	for _, c := range y.s.Stripe.Calls() {
		if c.Method == "POST" && charged(c) {
			seen[c.Headers["Idempotency-Key"]]++
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("idempotency key %s reached Stripe %d times", k, n)
		}
	}
}

// retries moves the clock to each retry day, ticks, and checks that retry
// n was paid against the open invoice under its own key, and failed again
// (its webhook), except that the caller decides what the last one does.
func (y *year) retries(invoiceID, key string, at ...string) {
	y.t.Helper()
	for i, when := range at {
		n := i + 1
		y.setClock(when)
		y.tick()
		last := i == len(at)-1
		// A last retry the card pays can renew the term before a poll sees
		// Retries == n (seen once under make test's load); the Stripe call
		// below still shows the retry was made under its own key.
		y.until(fmt.Sprintf("retry %d raised", n), func(s *subscription.Subscription) bool {
			return s.Dunning.Retries == n || last && s.Status == subscription.Active
		})
		calls := y.stripeCalls(fmt.Sprintf("%s-retry-%d", key, n))
		if len(calls) != 1 || calls[0].Path != "/v1/invoices/"+invoiceID+"/pay" {
			y.t.Fatalf("retry %d: Stripe calls %v", n, calls)
		}
		if !last {
			y.invoiceResult(y.mustSub().TermEnd, invoiceID, 19*118800, false)
		}
	}
}

func (y *year) mustSub() *subscription.Subscription {
	y.t.Helper()
	s, err := y.s.Store.Subscription(background, nil, y.subID)
	if err != nil {
		y.t.Fatal(err)
	}
	return s
}

// history asserts n history records announcing event.
func (y *year) history(event string, n int) {
	y.t.Helper()
	h, err := y.s.Store.SubscriptionHistory(background, y.subID)
	if err != nil {
		y.t.Fatal(err)
	}
	got := 0
	for _, r := range h {
		if r.Event == event && !r.NoOp {
			got++
		}
	}
	if got != n {
		y.t.Fatalf("%d history records of %s, want %d", got, event, n)
	}
}

func TestCanceledAutoRenewIsNeverChargedAndExpiresDeprovisioned(t *testing.T) {
	y := startYear(t)
	y.p = purchase(t)
	y.subID = y.p.SubscriptionID()
	y.webhook(y.p.CheckoutCompleted(uniq("evt"), y.now()))
	y.until("active", func(s *subscription.Subscription) bool { return s.Status == subscription.Active })
	y.provisioned(1, "premium", 10)

	// Cancel auto-renew, undo it, cancel it again: GitLab follows each.
	for i, on := range []bool{false, true, false} {
		y.setClock(fmt.Sprintf("2026-0%d-01T10:00:00Z", i+3))
		y.command(catalog.CommandSetAutoRenew, catalog.Command{AutoRenew: on})
		y.until(fmt.Sprintf("auto-renew %t", on), func(s *subscription.Subscription) bool { return s.Order.AutoRenew == on })
		if bp := y.provisioned(i+2, "premium", 10); bp["auto_renew"] != on {
			t.Fatalf("GitLab told auto_renew %v, want %t", bp["auto_renew"], on)
		}
	}
	eventually(t, 30*time.Second, "CRM shows auto-renew off", func() (bool, string) {
		rec, _ := y.s.Salesforce.Record("Fulfillment_Subscription__c", y.subID)
		return rec["Auto_Renew__c"] == false, fmt.Sprint(rec)
	})

	// No notice and no charge before term end...
	y.setClock("2027-01-08T10:00:00Z")
	y.tick()
	reviewed := y.until("reviewed up to the expiry", func(s *subscription.Subscription) bool {
		return s.NextReviewAt != nil && s.NextReviewAt.Format(time.DateOnly) == "2027-01-15"
	})
	if !reviewed.NoticeSentFor.IsZero() || !reviewed.RenewalPendingFor.IsZero() || len(y.stripeCalls("renewal-")) != 0 {
		t.Fatalf("a non-renewing subscription got a notice (%s) or a charge (%d calls)", reviewed.NoticeSentFor, len(y.stripeCalls("renewal-")))
	}
	// ...and at term end it expires and is deprovisioned.
	y.setClock("2027-01-15T10:00:00Z")
	y.tick()
	y.until("expired", func(s *subscription.Subscription) bool { return s.Status == subscription.Expired })
	y.provisioned(5, "free", 0)
	y.crm("expired", "premium", 10)
	if n := len(y.stripeCalls("")); n != 0 {
		t.Fatalf("%d Stripe calls for a subscription that never renewed", n)
	}
}
