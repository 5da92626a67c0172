package subscription

import (
	"math"
	"testing"
	"time"

	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/runtime/failure"
)

var t0 = time.Date(2026, 3, 10, 15, 4, 5, 0, time.UTC)

func order() catalog.Order {
	return catalog.Order{PlanCode: "premium", Seats: 10, Deployment: catalog.DeploymentSaaS, NamespaceID: "42", AutoRenew: true, TermMonths: 12}
}

func active(t *testing.T) *Subscription {
	t.Helper()
	s, _, err := Purchase("sub-1", "cs_1", order(), catalog.Customer{}, true, t0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPurchasePaidActivatesForOneTerm(t *testing.T) {
	s, c, err := Purchase("sub-1", "cs_1", order(), catalog.Customer{}, true, t0)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != Active || c.Event != catalog.SubscriptionActivated || s.Version != 1 {
		t.Fatalf("got status %s event %q version %d", s.Status, c.Event, s.Version)
	}
	if want := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC); !s.TermStart.Equal(want) {
		t.Errorf("term start %s, want %s", s.TermStart, want)
	}
	if want := time.Date(2027, 3, 10, 0, 0, 0, 0, time.UTC); !s.TermEnd.Equal(want) {
		t.Errorf("term end %s, want %s", s.TermEnd, want)
	}
}

func TestPurchaseRefusesInvalidOrdersPermanently(t *testing.T) {
	tests := map[string]func(*catalog.Order){
		"unknown plan":          func(o *catalog.Order) { o.PlanCode = "platinum" },
		"zero seats":            func(o *catalog.Order) { o.Seats = 0 },
		"saas without ns":       func(o *catalog.Order) { o.NamespaceID = "" },
		"self-managed no inst":  func(o *catalog.Order) { o.Deployment = catalog.DeploymentSelfManaged },
		"unknown deployment":    func(o *catalog.Order) { o.Deployment = "mainframe" },
		"negative storage pack": func(o *catalog.Order) { o.StorageGB = -1 },
		"seats over the limit":  func(o *catalog.Order) { o.Seats = catalog.MaxSeats + 1 },
		"max int seats":         func(o *catalog.Order) { o.Seats = math.MaxInt64 },
		"storage over limit":    func(o *catalog.Order) { o.StorageGB = catalog.MaxPackAmount + 1 },
		"compute over limit":    func(o *catalog.Order) { o.ComputeMinutes = math.MaxInt64 },
		"term over the limit":   func(o *catalog.Order) { o.TermMonths = catalog.MaxTermMonths + 1 },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			o := order()
			mutate(&o)
			_, _, err := Purchase("sub-1", "cs_1", o, catalog.Customer{}, true, t0)
			if err == nil || !failure.IsPermanent(err) {
				t.Fatalf("err = %v, want a permanent error", err)
			}
		})
	}
}

func TestPendingPurchaseSettles(t *testing.T) {
	tests := []struct {
		name      string
		succeeded bool
		want      Status
		event     string
	}{
		{"succeeded", true, Active, catalog.SubscriptionActivated},
		{"failed", false, Canceled, catalog.SubscriptionCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c, err := Purchase("sub-1", "cs_1", order(), catalog.Customer{}, false, t0)
			if err != nil || s.Status != Pending || c.Event != "" {
				t.Fatalf("purchase: %v %s %q", err, s.Status, c.Event)
			}
			c = s.SettleInitialPayment(tt.succeeded, t0.Add(time.Hour))
			if s.Status != tt.want || c.Event != tt.event {
				t.Fatalf("got %s %q, want %s %q", s.Status, c.Event, tt.want, tt.event)
			}
			if again := s.SettleInitialPayment(tt.succeeded, t0.Add(2*time.Hour)); !again.NoOp {
				t.Fatal("second settlement changed state")
			}
		})
	}
}

func TestInvoicePaidExtendsTermOnceAndIgnoresOtherTerms(t *testing.T) {
	s := active(t)
	next := s.TermEnd
	if c := s.ApplyInvoicePaid(next.AddDate(1, 0, 0), t0.AddDate(1, 0, 0)); !c.NoOp {
		t.Fatal("an invoice for a later term was applied")
	}
	c := s.ApplyInvoicePaid(next, t0.AddDate(1, 0, 0))
	if c.NoOp || c.Event != catalog.SubscriptionRenewed || !s.TermStart.Equal(next) || !s.TermEnd.Equal(next.AddDate(1, 0, 0)) {
		t.Fatalf("renewal not applied: %+v term %s..%s", c, s.TermStart, s.TermEnd)
	}
	version := s.Version
	if c := s.ApplyInvoicePaid(next, t0.AddDate(1, 0, 1)); !c.NoOp || s.Version != version {
		t.Fatal("the same invoice extended the term twice")
	}
}

func TestPaymentFailureOrdering(t *testing.T) {
	s := active(t)
	next := s.TermEnd
	late := t0.AddDate(1, 0, 0)
	if c := s.ApplyPaymentFailed(next, late, "in_1"); c.Event != catalog.SubscriptionPastDue || s.Status != PastDue {
		t.Fatalf("failure not applied: %+v", c)
	}
	if c := s.ApplyPaymentFailed(next, late.Add(time.Hour), "in_1"); !c.NoOp {
		t.Fatal("second failure changed state")
	}
	if c := s.ApplyInvoicePaid(next, late.Add(2*time.Hour)); c.To != Active || c.Event != catalog.SubscriptionRenewed {
		t.Fatalf("payment after failure did not restore: %+v", c)
	}
	// A failure for the term now paid arrives late: it must not undo the payment.
	if c := s.ApplyPaymentFailed(next, late.Add(time.Hour), "in_1"); !c.NoOp || s.Status != Active {
		t.Fatalf("stale failure applied: %+v status %s", c, s.Status)
	}
}

func TestRenewalChargeStepOncePerTerm(t *testing.T) {
	s := active(t)
	p := DefaultPolicy()
	if hasStep(s.Due(s.TermEnd.Add(-8*24*time.Hour), p), ActCharge) {
		t.Fatal("charge due before the lead time")
	}
	now := s.TermEnd.Add(-24 * time.Hour)
	if !hasStep(s.Due(now, p), ActCharge) {
		t.Fatal("charge not due within the lead time")
	}
	if !s.MarkRenewalPending("in_1", now) || hasStep(s.Due(now, p), ActCharge) {
		t.Fatal("still due after the renewal was raised")
	}
	if s.MarkRenewalPending("in_2", now) {
		t.Fatal("a second renewal was raised for the same term")
	}
}

func TestExpiryOnlyForNonRenewingAtTermEnd(t *testing.T) {
	s := active(t)
	s.Order.AutoRenew = false
	if c := s.ExpireIfEnded(s.TermEnd.Add(-time.Second)); !c.NoOp {
		t.Fatal("expired before term end")
	}
	if c := s.ExpireIfEnded(s.TermEnd); c.Event != catalog.SubscriptionExpired || s.Status != Expired {
		t.Fatalf("not expired at term end: %+v", c)
	}
	renewing := active(t)
	if c := renewing.ExpireIfEnded(renewing.TermEnd.Add(time.Hour)); !c.NoOp {
		t.Fatal("an auto-renewing subscription expired")
	}
}

func TestCancelEndsOnce(t *testing.T) {
	s := active(t)
	if c := s.Cancel(t0.Add(time.Hour), "canceled at provider"); c.Event != catalog.SubscriptionCanceled {
		t.Fatalf("%+v", c)
	}
	if c := s.Cancel(t0.Add(2*time.Hour), "again"); !c.NoOp {
		t.Fatal("canceled twice")
	}
	if c := s.ApplyInvoicePaid(s.TermEnd, t0.Add(3*time.Hour)); !c.NoOp {
		t.Fatal("a canceled subscription was renewed")
	}
}
