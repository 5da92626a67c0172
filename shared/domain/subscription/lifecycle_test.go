package subscription

import (
	"errors"
	"math"
	"testing"
	"time"

	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/runtime/failure"
)

func hasStep(steps []Step, a Action) bool {
	for _, s := range steps {
		if s.Action == a {
			return true
		}
	}
	return false
}

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

func TestSeatReportsKeepTheTermMaximumWhateverTheOrder(t *testing.T) {
	s := active(t) // 10 seats, term 2026-03-10..2027-03-10
	reports := []struct {
		date  string
		users int
	}{{"2026-04-02", 12}, {"2026-04-01", 11}, {"2026-04-03", 14}, {"2026-04-02", 12}, {"2026-03-01", 40}, {"2027-03-10", 50}}
	for _, r := range reports {
		d, _ := time.Parse(time.DateOnly, r.date)
		s.RecordUsage(d, r.users, t0)
	}
	if s.MaxSeatsUsed != 14 || s.SeatsOwed != 4 {
		t.Fatalf("max %d owed %d, want 14 and 4 (reports outside the term ignored)", s.MaxSeatsUsed, s.SeatsOwed)
	}
	if s.Version != 1 {
		t.Errorf("usage bumped the version to %d", s.Version)
	}
	if got := s.RenewalOrder().Seats; got != 14 {
		t.Errorf("renewal seats %d, want the max used 14", got)
	}
	// A new term resets the maximum.
	s.MarkRenewalPending("in_r", s.TermEnd.Add(-days(7)))
	s.ApplyInvoicePaid(s.TermEnd, s.TermEnd)
	if s.Order.Seats != 14 || s.MaxSeatsUsed != 0 || s.SeatsOwed != 0 {
		t.Fatalf("after renewal seats %d max %d owed %d", s.Order.Seats, s.MaxSeatsUsed, s.SeatsOwed)
	}
	s.RecordUsage(s.TermStart.AddDate(0, 0, -1), 99, t0) // a late report of the old term
	if s.MaxSeatsUsed != 0 {
		t.Fatal("a late report of the previous term counted in the new one")
	}
}

func TestQuarterlyReconciliationNoticeThenTrueUp(t *testing.T) {
	s := active(t)
	p := DefaultPolicy()
	q1 := time.Date(2026, 6, 10, 0, 0, 0, 0, time.UTC)
	if steps := s.Due(q1.Add(-time.Second), p); hasStep(steps, ActReconNotice) {
		t.Fatal("reconciliation before the quarter date")
	}
	s.RecordUsage(q1.AddDate(0, 0, -3), 14, q1)
	steps := s.Due(q1, p)
	if len(steps) != 1 || steps[0].Action != ActReconNotice || steps[0].N != 1 {
		t.Fatalf("due at Q1: %+v", steps)
	}
	if c := s.NoticeReconciliation(1, q1); c.Event != catalog.SubscriptionReconciliationNotice || s.Reconciliation.Seats != 4 {
		t.Fatalf("notice %+v recon %+v", c, s.Reconciliation)
	}
	if hasStep(s.Due(q1.Add(days(7)-time.Second), p), ActTrueUp) {
		t.Fatal("true-up before the 7 days")
	}
	at := q1.Add(days(7))
	if !hasStep(s.Due(at, p), ActTrueUp) {
		t.Fatal("true-up not due 7 days after the notice")
	}
	// 4 premium seats (348 $/year) for 2026-06-17..2027-03-10: 266 of 365 days.
	if got := s.TrueUpCents(at); got != 101444 {
		t.Errorf("true-up %d cents, want 101444", got)
	}
	if c := s.ApplyTrueUp("in_q1", at); c.Event != catalog.SubscriptionChanged || s.Order.Seats != 14 || s.SeatsOwed != 0 {
		t.Fatalf("true-up %+v seats %d owed %d", c, s.Order.Seats, s.SeatsOwed)
	}
	if hasStep(s.Due(at, p), ActTrueUp) {
		t.Fatal("the quarter was billed twice")
	}
	// Q2 with nothing owed closes quietly.
	q2 := time.Date(2026, 9, 10, 0, 0, 0, 0, time.UTC)
	if c := s.NoticeReconciliation(2, q2); c.Event != "" || !s.Reconciliation.Billed {
		t.Fatalf("quarter without owed seats: %+v", c)
	}
}

func TestChangesAndTheirPrices(t *testing.T) {
	s := active(t)
	mid := time.Date(2026, 9, 9, 0, 0, 0, 0, time.UTC) // 182 of 365 days left
	if got := s.SeatsCents(5, mid); got != 86762 {     // 5*34800*182/365
		t.Errorf("5 seats cost %d", got)
	}
	if c, err := s.AddSeats(5, mid); err != nil || s.Order.Seats != 15 || c.Event != catalog.SubscriptionChanged {
		t.Fatalf("add seats %+v %v", c, err)
	}
	if got := s.UpgradeCents("ultimate", mid); got != 628274 { // 15*(118800-34800)*182/365
		t.Errorf("upgrade costs %d", got)
	}
	if _, err := s.ChangePlan("ultimate", mid); err != nil || s.Order.PlanCode != "ultimate" || s.PendingPlan != "" {
		t.Fatalf("upgrade: plan %s pending %q %v", s.Order.PlanCode, s.PendingPlan, err)
	}
	if _, err := s.ChangePlan("premium", mid); err != nil || s.Order.PlanCode != "ultimate" || s.PendingPlan != "premium" {
		t.Fatalf("downgrade: plan %s pending %q %v", s.Order.PlanCode, s.PendingPlan, err)
	}
	if s.RenewalOrder().PlanCode != "premium" {
		t.Error("the renewal is not charged at the downgraded plan")
	}
	if _, err := s.AddPack("pack-1", PackStorage, 10, mid); err != nil || s.Order.StorageGB != 10 {
		t.Fatalf("pack %v storage %d", err, s.Order.StorageGB)
	}
	if c, _ := s.AddPack("pack-1", PackStorage, 10, mid); !c.NoOp || s.Order.StorageGB != 10 {
		t.Fatal("the same pack purchase was added twice")
	}
	if _, err := s.ChangePlan("platinum", mid); !failure.IsPermanent(err) {
		t.Errorf("unknown plan: %v", err)
	}
	if _, err := s.AddSeats(0, mid); !failure.IsPermanent(err) {
		t.Errorf("zero seats: %v", err)
	}
	if c, _ := s.SetAutoRenew(false, mid); c.NoOp || s.Order.AutoRenew {
		t.Fatal("auto-renew not canceled")
	}
	p := DefaultPolicy()
	if st := s.Steps(p); !hasStep(st, ActExpire) || hasStep(st, ActCharge) {
		t.Fatalf("non-renewing steps %+v", st)
	}
	if c, _ := s.SetAutoRenew(true, mid); c.NoOp || !hasStep(s.Steps(p), ActCharge) {
		t.Fatal("auto-renew not restored")
	}
}

// A subscription whose term ended before its renewal was charged (the
// scheduler caught up late) and whose customer then turns auto-renew off
// holds no paid term: it ends at once, not at the next review.
func TestAutoRenewOffAfterTheTermEndedExpiresAtOnce(t *testing.T) {
	s := active(t)
	late := s.TermEnd.Add(days(3))
	c, err := s.SetAutoRenew(false, late)
	if err != nil || c.To != Expired || s.Status != Expired || c.Event != catalog.SubscriptionExpired {
		t.Fatalf("auto-renew off after the term end: %+v %v, status %s", c, err, s.Status)
	}

	s = active(t)
	s.MarkRenewalPending("in_r", s.TermEnd.Add(-days(7)))
	if c, _ := s.SetAutoRenew(false, late); c.To != Active || !s.voidDue() {
		t.Fatalf("with a renewal invoice open it must be asked about (voided) first: %+v, void due %t", c, s.voidDue())
	}

	s = active(t)
	if c, _ := s.SetAutoRenew(false, s.TermEnd.Add(-days(1))); c.To != Active {
		t.Fatalf("inside the term it runs to the term end: %+v", c)
	}
}

func TestDunningRunsRetriesGraceSuspensionCancel(t *testing.T) {
	s := active(t)
	p := DefaultPolicy()
	s.MarkRenewalPending("in_r", s.TermEnd.Add(-days(7)))
	failed := s.TermEnd.Add(-days(7) + time.Hour)
	if c := s.ApplyPaymentFailed(s.TermEnd, failed, "in_r"); c.To != PastDue {
		t.Fatalf("%+v", c)
	}
	for i, d := range []int{3, 7, 14} {
		steps := s.Due(failed.Add(days(d)), p)
		if len(steps) != 1 || steps[0].Action != ActRetry || steps[0].N != i+1 {
			t.Fatalf("day %d: %+v", d, steps)
		}
		s.RecordRetry(i+1, failed.Add(days(d)))
		if c := s.ApplyPaymentFailed(s.TermEnd, failed.Add(days(d)+time.Hour), "in_r"); !c.NoOp {
			t.Fatal("a failed retry changed the state")
		}
	}
	if hasStep(s.Due(failed.Add(days(15)-time.Second), p), ActGrace) {
		t.Fatal("grace before the last retry's day is over")
	}
	if c := s.EnterGrace(failed.Add(days(15))); c.To != Grace || c.Event != catalog.SubscriptionGrace {
		t.Fatalf("%+v", c)
	}
	if st := s.Due(failed.Add(days(22)), p); len(st) != 1 || st[0].Action != ActSuspend {
		t.Fatalf("suspension steps %+v", st)
	}
	if c := s.Suspend(failed.Add(days(22))); c.To != Suspended || c.Event != catalog.SubscriptionSuspended {
		t.Fatalf("%+v", c)
	}
	if st := s.Due(failed.Add(days(52)), p); len(st) != 1 || st[0].Action != ActCancel {
		t.Fatalf("cancel steps %+v", st)
	}
	if c := s.CancelUnpaid(failed.Add(days(52))); c.To != Canceled {
		t.Fatalf("%+v", c)
	}
	if s.Steps(p) != nil {
		t.Fatal("a canceled subscription still has steps")
	}
}

func TestAPaymentDuringDunningRestores(t *testing.T) {
	for _, status := range []Status{PastDue, Grace, Suspended} {
		s := active(t)
		s.MarkRenewalPending("in_r", s.TermEnd.Add(-days(7)))
		s.ApplyPaymentFailed(s.TermEnd, s.TermEnd.Add(-days(6)), "in_r")
		s.Status = status
		c := s.ApplyInvoicePaid(s.TermEnd, s.TermEnd.Add(days(20)))
		if c.From != status || c.To != Active || c.Event != catalog.SubscriptionRenewed || s.Dunning != (Dunning{}) {
			t.Fatalf("%s: %+v dunning %+v", status, c, s.Dunning)
		}
	}
}

func TestRescheduleAndNoticeBeforeCharge(t *testing.T) {
	s := active(t)
	p := DefaultPolicy()
	s.Reschedule(t0, p)
	if s.NextReviewAt == nil || !s.NextReviewAt.Equal(time.Date(2026, 6, 10, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("next review %v, want the first quarter date", s.NextReviewAt)
	}
	late := s.TermEnd.Add(-days(2)) // a tick that comes late runs both, notice first
	steps := s.Due(late, p)
	if len(steps) < 2 || steps[len(steps)-2].Action != ActNotice || steps[len(steps)-1].Action != ActCharge {
		t.Fatalf("steps %+v", steps)
	}
	s.SendRenewalNotice(late)
	if hasStep(s.Due(late, p), ActNotice) {
		t.Fatal("notice twice")
	}
	s.MarkChargeUnknown(late)
	if st := s.Due(late.Add(time.Hour), p); !hasStep(st, ActSettle) || hasStep(st, ActCharge) {
		t.Fatalf("unknown charge steps %+v", st)
	}
}

func TestPolicyValidation(t *testing.T) {
	if err := DefaultPolicy().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, days := range [][]int{{3, 3}, {7, 3}, {0, 5}} {
		p := DefaultPolicy()
		p.RetryDays = days
		if p.Validate() == nil {
			t.Errorf("retry days %v accepted", days)
		}
	}
	p := DefaultPolicy()
	p.GraceDays = -1
	if p.Validate() == nil {
		t.Error("negative grace accepted")
	}
}

func TestSeatsAndPacksAboveTheLimitsAreRefused(t *testing.T) {
	mid := time.Date(2026, 9, 9, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		apply func(s *Subscription) (Change, error)
	}{
		{"zero seats", func(s *Subscription) (Change, error) { return s.AddSeats(0, mid) }},
		{"negative seats", func(s *Subscription) (Change, error) { return s.AddSeats(-5, mid) }},
		{"max int seats", func(s *Subscription) (Change, error) { return s.AddSeats(math.MaxInt64, mid) }},
		{"seats over the limit", func(s *Subscription) (Change, error) { return s.AddSeats(catalog.MaxSeats+1, mid) }},
		{"seats taking the total over", func(s *Subscription) (Change, error) { return s.AddSeats(catalog.MaxSeats-9, mid) }}, // 10 held
		{"zero storage", func(s *Subscription) (Change, error) { return s.AddPack("p", PackStorage, 0, mid) }},
		{"negative compute", func(s *Subscription) (Change, error) { return s.AddPack("p", PackCompute, -1, mid) }},
		{"max int storage", func(s *Subscription) (Change, error) { return s.AddPack("p", PackStorage, math.MaxInt64, mid) }},
		{"compute over the limit", func(s *Subscription) (Change, error) {
			return s.AddPack("p", PackCompute, catalog.MaxPackAmount+1, mid)
		}},
		{"storage taking the total over", func(s *Subscription) (Change, error) {
			s.Order.StorageGB = catalog.MaxPackAmount // already bought to the limit
			return s.AddPack("p", PackStorage, 1, mid)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := active(t)
			c, err := tc.apply(s)
			if !failure.IsPermanent(err) || !errors.Is(err, ErrChange) {
				t.Fatalf("change %+v err %v, want a permanent ErrChange", c, err)
			}
			if s.Order.Seats != 10 || s.Order.ComputeMinutes != 0 || len(s.Packs) != 0 || s.Version != 1 {
				t.Fatalf("refused change applied: order %+v packs %d version %d", s.Order, len(s.Packs), s.Version)
			}
			if err := catalog.CheckLimits(s.Order); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Up to the limit exactly is allowed, and priced positive.
	s := active(t)
	if got := s.SeatsCents(catalog.MaxSeats-10, mid); got <= 0 {
		t.Fatalf("%d seats priced %d", catalog.MaxSeats-10, got)
	}
	if _, err := s.AddSeats(catalog.MaxSeats-10, mid); err != nil || s.Order.Seats != catalog.MaxSeats {
		t.Fatalf("add seats to the limit: seats %d %v", s.Order.Seats, err)
	}
	if _, err := s.AddSeats(1, mid); !failure.IsPermanent(err) {
		t.Fatalf("a seat past the limit: %v", err)
	}
}

func TestSeatCountsAboveTheLimitDoNotCount(t *testing.T) {
	s := active(t)
	at := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	for _, n := range []int{-1, catalog.MaxSeats + 1, math.MaxInt64} {
		if c := s.RecordUsage(at, n, at); !c.NoOp {
			t.Errorf("%d users counted: %+v", n, c)
		}
	}
	if s.MaxSeatsUsed != 0 || s.RenewalOrder().Seats != 10 {
		t.Fatalf("max seats used %d, renewal seats %d", s.MaxSeatsUsed, s.RenewalOrder().Seats)
	}
	if c := s.RecordUsage(at, catalog.MaxSeats, at); c.NoOp || s.RenewalOrder().Seats != catalog.MaxSeats {
		t.Fatalf("the limit itself: %+v", c)
	}
	p, _ := catalog.LookupPlan(s.RenewalOrder().PlanCode)
	if got := p.TermPriceCents(s.RenewalOrder()); got != int64(catalog.MaxSeats)*p.SeatCentsPerYear {
		t.Fatalf("renewal at the seat limit priced %d", got)
	}
}
