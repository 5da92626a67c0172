package notice

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/subscription"
)

var (
	termStart = time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	termEnd   = time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC)
	customer  = catalog.Customer{ProviderCustomerID: "cus_1", Email: "ada@example.com", Name: "Ada"}
)

func snap(mut func(*catalog.SubscriptionSnapshot)) catalog.SubscriptionSnapshot {
	s := catalog.SubscriptionSnapshot{ID: "sub-1", Version: 3, Status: "active", Customer: customer, TermStart: termStart, TermEnd: termEnd,
		Order: catalog.Order{PlanCode: "premium", Seats: 10, Deployment: catalog.DeploymentSaaS, NamespaceID: "4242", AutoRenew: true, TermMonths: 12}}
	if mut != nil {
		mut(&s)
	}
	return s
}

func input(t *testing.T, typ string, data any, now time.Time) Input {
	t.Helper()
	b, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return Input{Type: typ, Data: b, Now: now, Policy: subscription.DefaultPolicy(), PortalURL: "https://portal.test",
		Account: Account{Currency: "usd", Customer: customer, PlanCode: "ultimate"}}
}

func decideOne(t *testing.T, in Input) Email {
	t.Helper()
	d, err := Decide(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Emails) != 1 {
		t.Fatalf("%s: %d e-mails, want 1", in.Type, len(d.Emails))
	}
	return d.Emails[0]
}

func TestDecideEveryMoment(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 4, 15, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		in        Input
		kind      Kind
		essential bool
		subject   string
		check     func(t *testing.T, e Email)
	}{
		{"purchase", input(t, catalog.SubscriptionActivated, snap(nil), at), PurchaseConfirmation, true,
			"Receipt for your GitLab Premium subscription: $3,480.00", nil},
		{"renewal notice at the renewal's seats and plan", input(t, catalog.SubscriptionRenewalNotice, snap(func(s *catalog.SubscriptionSnapshot) {
			s.Order.PlanCode, s.Order.Seats, s.RenewalSeats = "ultimate", 19, 19
		}), at), RenewalNotice, false, "Your GitLab Ultimate subscription renews on 2027-01-15: $22,572.00 will be charged on 2027-01-08", nil},
		{"reconciliation notice: 4 seats prorated from the invoice day", input(t, catalog.SubscriptionReconciliationNotice, snap(func(s *catalog.SubscriptionSnapshot) {
			s.SeatsOwed, s.MaxSeatsUsed = 4, 14
		}), at), ReconciliationNotice, false, "4 seats over your GitLab Premium subscription: $1,022.07 will be invoiced on 2026-04-22", nil},
		{"renewed", input(t, catalog.SubscriptionRenewed, snap(func(s *catalog.SubscriptionSnapshot) {
			s.Order.PlanCode, s.Order.Seats, s.TermStart, s.TermEnd = "ultimate", 19, termEnd, termEnd.AddDate(1, 0, 0)
		}), at), RenewalReceipt, true, "Receipt: your GitLab Ultimate subscription is renewed until 2028-01-15: $22,572.00", func(t *testing.T, e Email) {
			if e.Data.Amount != "$22,572.00" {
				t.Errorf("amount %q", e.Data.Amount)
			}
		}},
		{"change", input(t, catalog.SubscriptionChanged, snap(func(s *catalog.SubscriptionSnapshot) { s.Reason = "5 seats added"; s.Order.Seats = 15 }), at),
			ChangeReceipt, true, "Your GitLab Premium subscription changed: 5 seats added", nil},
		{"auto-renew off: nothing charged", input(t, catalog.SubscriptionChanged, snap(func(s *catalog.SubscriptionSnapshot) { s.Reason = "auto-renew canceled" }), at),
			ChangeReceipt, true, "Your GitLab Premium subscription changed: auto-renew canceled", func(t *testing.T, e Email) {
				if text, _, _ := Render(e); !strings.Contains(text, "Nothing was charged for this change.") {
					t.Errorf("text part:\n%s", text)
				}
			}},
		{"grace", func() Input {
			in := input(t, catalog.SubscriptionGrace, snap(func(s *catalog.SubscriptionSnapshot) { s.Status = "grace" }), at)
			in.Account.Dunning.GraceFrom = time.Date(2028, 1, 23, 11, 0, 0, 0, time.UTC)
			return in
		}(), GraceWarning, true, "Action needed: your GitLab Premium subscription will be suspended on 2028-01-30", nil},
		{"suspended", func() Input {
			in := input(t, catalog.SubscriptionSuspended, snap(nil), at)
			in.Account.Dunning.SuspendedAt = time.Date(2028, 1, 30, 11, 0, 0, 0, time.UTC)
			return in
		}(), Suspended, true, "Your GitLab Premium subscription is suspended", func(t *testing.T, e Email) {
			if e.Data.Date != "2028-02-29" {
				t.Errorf("cancel date %q, want 2028-02-29", e.Data.Date)
			}
		}},
		{"canceled", input(t, catalog.SubscriptionCanceled, snap(nil), at), Canceled, true, "Your GitLab Premium subscription is canceled", nil},
		{"expired", input(t, catalog.SubscriptionExpired, snap(nil), at), Expired, true, "Your GitLab Premium subscription expired on 2027-01-15", nil},
		{"payment failed, first retry in 3 days", func() Input {
			in := input(t, catalog.PaymentFailed, catalog.PaymentFailure{SubscriptionID: "sub-1", AmountCents: 2257200}, at)
			in.Account.Dunning = subscription.Dunning{FailedAt: time.Date(2027, 1, 8, 11, 0, 0, 0, time.UTC)}
			return in
		}(), PaymentFailed, true, "Your payment of $22,572.00 failed: we will try again on 2027-01-11", func(t *testing.T, e Email) {
			if e.Data.CardURL != "https://portal.test/subscriptions/sub-1/payment_method" {
				t.Errorf("card url %q", e.Data.CardURL)
			}
		}},
		{"payment failed after the last retry", func() Input {
			in := input(t, catalog.PaymentFailed, catalog.PaymentFailure{SubscriptionID: "sub-1", AmountCents: 2257200}, at)
			in.Account.Dunning = subscription.Dunning{FailedAt: time.Date(2027, 1, 8, 11, 0, 0, 0, time.UTC), Retries: 3}
			return in
		}(), PaymentFailed, true, "Your payment of $22,572.00 failed: please update your card", nil},
		{"activation code", input(t, LicenseActivationCodeIssued, ActivationCodeIssued{SubscriptionID: "sub-1", ActivationCode: "ACT-123",
			Customer: customer, PlanCode: "premium", Seats: 10, TermEnd: termEnd}, at), ActivationCode, true, "Your activation code for GitLab Premium", func(t *testing.T, e Email) {
			if e.Data.ActivationCode != "ACT-123" {
				t.Errorf("code %q", e.Data.ActivationCode)
			}
		}},
		{"trial ending", input(t, TrialEnding, TrialSnapshot{NamespaceID: "77", PlanCode: "ultimate", StartsOn: "2026-01-01", EndsOn: "2026-01-31", Contact: customer}, at),
			TrialEndingSoon, false, "Your GitLab Ultimate trial ends on 2026-01-31", nil},
		{"sync overdue", input(t, LicenseSyncOverdue, LicenseSyncOverdueData{SubscriptionID: "sub-1", InstanceID: "inst-1", DaysSinceSync: 8,
			GraceEndsAt: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), Customer: customer}, at), SyncOverdue, true, "Your GitLab instance has not synced for 8 days", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := decideOne(t, c.in)
			if e.Kind != c.kind || e.Essential != c.essential || e.Subject != c.subject || e.To.Email != customer.Email {
				t.Fatalf("got %s essential=%t to %q %q\nwant %s essential=%t %q", e.Kind, e.Essential, e.To.Email, e.Subject, c.kind, c.essential, c.subject)
			}
			if c.check != nil {
				c.check(t, e)
			}
			text, html, err := Render(e)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text, "Hello Ada") || !strings.Contains(html, "Hello Ada") {
				t.Fatalf("greeting missing:\n%s\n%s", text, html)
			}
			for _, fig := range []string{e.Data.Amount, e.Data.Date, e.Data.ActivationCode} {
				if fig != "" && (!strings.Contains(text, fig) || !strings.Contains(html, fig)) {
					t.Errorf("figure %q missing from a part:\n%s\n%s", fig, text, html)
				}
			}
		})
	}
}

// Receipts show the ledger line: what was paid after a discount, the tax
// apart, the invoice, in the currency charged; a true-up's invoice says
// what is due when it is raised and its receipt comes when it is paid.
func TestReceiptsShowWhatWasCharged(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 4, 22, 10, 0, 0, 0, time.UTC)
	discounted := &catalog.Charge{Key: "purchase-cs_1", Kind: "purchase", AmountCents: 313200, TaxCents: 62640, Currency: "eur", InvoiceID: "in_p", Outcome: "paid", At: termStart}
	seats := &catalog.Charge{Key: "seats-1", Kind: "seats", AmountCents: 127759, Currency: "usd", InvoiceID: "in_s", Outcome: "paid", At: at, Seats: 5}
	trueUp := catalog.Charge{Key: "trueup-q1", Kind: "true-up", Description: "quarter 1 true-up: 4 seats to 2027-01-15", AmountCents: 102207,
		Currency: "usd", InvoiceID: "in_t", Outcome: "open", At: at, Seats: 4}
	paidTrueUp := trueUp
	paidTrueUp.Outcome, paidTrueUp.At = "paid", at.Add(2*time.Hour)
	cases := []struct {
		name    string
		in      Input
		kind    Kind
		subject string
		figures []string // in both parts
	}{
		{"purchase at a discount, tax apart", input(t, catalog.SubscriptionActivated, snap(func(s *catalog.SubscriptionSnapshot) { s.Charge = discounted }), at),
			PurchaseConfirmation, "Receipt for your GitLab Premium subscription: €3,132.00", []string{"€3,132.00", "€626.40", "in_p"}},
		{"seats added by a payment", input(t, catalog.SubscriptionChanged, snap(func(s *catalog.SubscriptionSnapshot) {
			s.Reason, s.Order.Seats, s.Charge = "charge seats-1 paid: 5 seats added", 15, seats
		}), at), ChangeReceipt, "Your GitLab Premium subscription changed: charge seats-1 paid: 5 seats added: $1,277.59 paid", []string{"$1,277.59", "in_s"}},
		{"true-up raised: an invoice, not a receipt", input(t, catalog.SubscriptionChanged, snap(func(s *catalog.SubscriptionSnapshot) {
			s.Reason, s.Order.Seats, s.Charge = "quarter 1 true-up: 4 seats added", 14, &trueUp
		}), at), TrueUpInvoice, "Invoice for your GitLab Premium subscription: quarter 1 true-up: 4 seats added, $1,022.07 due", []string{"$1,022.07", "in_t", "14"}},
		{"true-up paid: its receipt", input(t, catalog.ChargePaid, catalog.ChargeNotice{SubscriptionID: "sub-1", Charge: paidTrueUp}, at),
			TrueUpReceipt, "Receipt for your GitLab Ultimate true-up: $1,022.07 paid", []string{"$1,022.07", "in_t", "2026-04-22", "quarter 1 true-up: 4 seats to 2027-01-15"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := decideOne(t, c.in)
			if e.Kind != c.kind || !e.Essential || e.Subject != c.subject {
				t.Fatalf("got %s essential=%t %q\nwant %s %q", e.Kind, e.Essential, e.Subject, c.kind, c.subject)
			}
			text, html, err := Render(e)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range c.figures {
				if !strings.Contains(text, f) || !strings.Contains(html, f) {
					t.Errorf("%q missing from a part:\n%s\n%s", f, text, html)
				}
			}
		})
	}
	refunded := *seats
	refunded.Outcome = "refunded"
	e := decideOne(t, input(t, catalog.SubscriptionChanged, snap(func(s *catalog.SubscriptionSnapshot) {
		s.Reason, s.Charge = "charge seats-1 refunded: taken back", &refunded
	}), at))
	if text, _, _ := Render(e); e.Data.Amount != "" || strings.Contains(text, "Amount paid") || strings.Contains(text, "Nothing was charged") {
		t.Fatalf("a refund's change told as paid or free: %q\n%s", e.Subject, text)
	}
	other := paidTrueUp
	other.Kind = "seats"
	if d, err := Decide(input(t, catalog.ChargePaid, catalog.ChargeNotice{SubscriptionID: "sub-1", Charge: other}, at)); err != nil || len(d.Emails) != 0 {
		t.Fatalf("a paid seat charge has its receipt with its change event: %+v %v", d, err)
	}
}

// A notice delivered late (an outage, a backlog) tells the dates and the
// true-up amount renewal scheduled when it made the event, not ones
// recomputed from the later delivery's clock.
func TestALateNoticeTellsTheScheduledDates(t *testing.T) {
	t.Parallel()
	late := time.Date(2026, 4, 17, 10, 0, 0, 0, time.UTC) // two days after the notice was made
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	cases := []struct {
		typ      string
		schedule []catalog.ScheduledStep
		subject  string
		inApp    string
	}{
		{catalog.SubscriptionReconciliationNotice, []catalog.ScheduledStep{{Action: "renewal-notice", At: at("2026-12-31T00:00:00Z")},
			{Action: string(subscription.ActTrueUp), At: at("2026-04-22T10:00:00Z"), AmountCents: 102207}},
			"4 seats over your GitLab Premium subscription: $1,022.07 will be invoiced on 2026-04-22", "2026-04-22"},
		{catalog.SubscriptionRenewalNotice, []catalog.ScheduledStep{{Action: string(subscription.ActCharge), At: at("2027-01-08T00:00:00Z")}},
			"Your GitLab Premium subscription renews on 2027-01-15: $3,480.00 will be charged on 2027-01-08", ""},
		{catalog.SubscriptionGrace, []catalog.ScheduledStep{{Action: string(subscription.ActSuspend), At: at("2026-04-22T11:00:00Z")}},
			"Action needed: your GitLab Premium subscription will be suspended on 2026-04-22", ""},
	}
	for _, c := range cases {
		d, err := Decide(input(t, c.typ, snap(func(s *catalog.SubscriptionSnapshot) { s.SeatsOwed, s.Schedule = 4, c.schedule }), late))
		if err != nil || len(d.Emails) != 1 || d.Emails[0].Subject != c.subject {
			t.Fatalf("%s: %+v %v\nwant %q", c.typ, d.Emails, err, c.subject)
		}
		if c.inApp != "" && (len(d.Reconciliations) != 1 || date(d.Reconciliations[0].NextReconciliationDate) != c.inApp) {
			t.Fatalf("in-app %+v, want the reconciliation on %s", d.Reconciliations, c.inApp)
		}
	}
}

// A payment failure read after the next retry was already raised (a late
// delivery) tells its own next retry, from the dunning the event carries,
// not the subscription's newer state.
func TestALatePaymentFailureTellsItsOwnRetryDate(t *testing.T) {
	t.Parallel()
	failedAt := time.Date(2027, 1, 8, 11, 0, 0, 0, time.UTC)
	in := input(t, catalog.PaymentFailed, catalog.PaymentFailure{SubscriptionID: "sub-1", AmountCents: 348000, DunningSince: failedAt}, failedAt.AddDate(0, 0, 4))
	in.Account.Dunning = subscription.Dunning{FailedAt: failedAt, Retries: 1} // retry 1 raised meanwhile
	if e := decideOne(t, in); e.Subject != "Your payment of $3,480.00 failed: we will try again on 2027-01-11" {
		t.Fatalf("subject %q", e.Subject)
	}
}

func TestReconciliationNoticeTellsGitLabForSaaSOnly(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 4, 15, 10, 0, 0, 0, time.UTC)
	d, err := Decide(input(t, catalog.SubscriptionReconciliationNotice, snap(func(s *catalog.SubscriptionSnapshot) { s.SeatsOwed = 4 }), at))
	if err != nil {
		t.Fatal(err)
	}
	want := UpcomingReconciliation{NamespaceID: 4242, NextReconciliationDate: time.Date(2026, 4, 22, 0, 0, 0, 0, time.UTC),
		DisplayAlertFrom: time.Date(2026, 4, 15, 0, 0, 0, 0, time.UTC)}
	if len(d.Reconciliations) != 1 || d.Reconciliations[0] != want {
		t.Fatalf("in-app %+v, want %+v", d.Reconciliations, want)
	}
	sm, err := Decide(input(t, catalog.SubscriptionReconciliationNotice, snap(func(s *catalog.SubscriptionSnapshot) {
		s.SeatsOwed, s.Order.Deployment, s.Order.NamespaceID, s.Order.InstanceID = 4, catalog.DeploymentSelfManaged, "", "inst-1"
	}), at))
	if err != nil || len(sm.Reconciliations) != 0 || len(sm.Emails) != 1 {
		t.Fatalf("self-managed: %+v %v", sm, err)
	}
}

func TestNobodyToTellAndBadPayloads(t *testing.T) {
	t.Parallel()
	d, err := Decide(input(t, catalog.SubscriptionActivated, snap(func(s *catalog.SubscriptionSnapshot) { s.Customer.Email = "" }), termStart))
	if err != nil || len(d.Emails) != 0 {
		t.Fatalf("no address: %+v %v", d, err)
	}
	d, err = Decide(input(t, catalog.SubscriptionPastDue, snap(nil), termStart))
	if err != nil || len(d.Emails) != 0 {
		t.Fatalf("past_due is told by payment.failed: %+v %v", d, err)
	}
	for _, typ := range []string{catalog.SubscriptionActivated, catalog.PaymentFailed, LicenseActivationCodeIssued, TrialEnding} {
		if _, err := Decide(Input{Type: typ, Data: []byte(`{"id": 12`)}); err == nil {
			t.Errorf("%s: undecodable payload accepted", typ)
		}
	}
	if _, err := Decide(input(t, LicenseActivationCodeIssued, ActivationCodeIssued{SubscriptionID: "sub-1", Customer: customer}, termStart)); err == nil {
		t.Error("activation code event without a code accepted")
	}
}

func TestCustomerNameWithHTMLIsEscapedInTheHTMLPart(t *testing.T) {
	t.Parallel()
	evil := `<script>alert("x")</script><b>Bob</b> & Co`
	e := decideOne(t, input(t, catalog.SubscriptionActivated, snap(func(s *catalog.SubscriptionSnapshot) {
		s.Customer.Name = evil
		s.Reason = `<img src=x onerror=alert(1)>`
	}), termStart))
	text, html, err := Render(e)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, "<script>") || strings.Contains(html, "<b>Bob</b>") {
		t.Fatalf("customer HTML reached the HTML part unescaped:\n%s", html)
	}
	if !strings.Contains(html, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;Bob&lt;/b&gt; &amp; Co") {
		t.Fatalf("escaped name missing:\n%s", html)
	}
	if !strings.Contains(text, evil) {
		t.Fatalf("the text part shows the name as given:\n%s", text)
	}
}

func TestEveryKindHasBothTemplates(t *testing.T) {
	t.Parallel()
	for _, k := range Kinds {
		if textTemplates.Lookup(string(k)) == nil || htmlTemplates.Lookup(string(k)) == nil {
			t.Errorf("kind %s lacks a text or HTML template", k)
		}
	}
}
