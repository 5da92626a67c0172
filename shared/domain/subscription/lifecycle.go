package subscription

import (
	"fmt"
	"sort"
	"time"

	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/ledger"
	"fulfillment/shared/domain/proration"
	"fulfillment/shared/runtime/failure"
)

// Policy is the schedule of a subscription's year: when the renewal notice
// goes out and the renewal is charged, how dunning runs, when a quarterly
// true-up is invoiced. Every duration is counted from a day boundary.
type Policy struct {
	NoticeLead     time.Duration // renewal notice before term end (15 days)
	ChargeLead     time.Duration // renewal charged before term end (7 days)
	RetryDays      []int         // payment retries, days after the first failure (3, 7, 14)
	GraceDays      int           // grace period after the last retry (7)
	SuspensionDays int           // suspended this long before canceled (30)
	TrueUpDelay    time.Duration // quarterly invoice after its notice (7 days)
	SettleAfter    time.Duration // ask Stripe about an unknown charge after (1 hour)
}

// DefaultPolicy is the schedule.
func DefaultPolicy() Policy {
	return Policy{
		NoticeLead: 15 * 24 * time.Hour, ChargeLead: 7 * 24 * time.Hour,
		RetryDays: []int{3, 7, 14}, GraceDays: 7, SuspensionDays: 30,
		TrueUpDelay: 7 * 24 * time.Hour, SettleAfter: time.Hour,
	}
}

// Validate refuses a schedule that cannot run: retries on increasing
// positive days, no negative periods.
func (p Policy) Validate() error {
	for i, d := range p.RetryDays {
		if d <= 0 || (i > 0 && d <= p.RetryDays[i-1]) {
			return fmt.Errorf("subscription.Policy: retry days %v must be positive and increasing", p.RetryDays)
		}
	}
	if p.NoticeLead < 0 || p.ChargeLead < 0 || p.GraceDays < 0 || p.SuspensionDays < 0 || p.TrueUpDelay < 0 || p.SettleAfter < 0 {
		return fmt.Errorf("subscription.Policy: negative period in %+v", p)
	}
	return nil
}

// Reconciliation is the quarterly true-up last looked at in a term.
type Reconciliation struct {
	TermStart time.Time `firestore:"term_start" json:"term_start"`
	Quarter   int       `firestore:"quarter" json:"quarter"`
	// NoticedAt is when owed seats were announced; zero when none were owed.
	NoticedAt time.Time `firestore:"noticed_at" json:"noticed_at"`
	Seats     int       `firestore:"seats" json:"seats"`
	Billed    bool      `firestore:"billed" json:"billed"`
	InvoiceID string    `firestore:"invoice_id" json:"invoice_id,omitempty"`
}

// Dunning is the state of an unpaid renewal.
type Dunning struct {
	FailedAt    time.Time `firestore:"failed_at" json:"failed_at"`
	InvoiceID   string    `firestore:"invoice_id" json:"invoice_id"`
	Retries     int       `firestore:"retries" json:"retries"`
	GraceFrom   time.Time `firestore:"grace_from" json:"grace_from"`
	SuspendedAt time.Time `firestore:"suspended_at" json:"suspended_at"`
}

// Pack kinds.
const (
	PackStorage = "storage"         // Amount in GB
	PackCompute = "compute_minutes" // Amount in minutes
)

// Pack is a storage or compute-minute pack bought for the current term.
type Pack struct {
	PurchaseID string    `firestore:"purchase_id" json:"purchase_id"`
	Kind       string    `firestore:"kind" json:"kind"`
	Amount     int       `firestore:"amount" json:"amount"`
	BoughtAt   time.Time `firestore:"bought_at" json:"bought_at"`
}

// ReviewAt asks the renewal tick to look at the subscription at t.
func (s *Subscription) ReviewAt(t time.Time) {
	t = t.UTC()
	s.NextReviewAt = &t
}

// running is whether the subscription is in a term (paid or in dunning).
func (s *Subscription) running() bool {
	switch s.Status {
	case Active, PastDue, Grace, Suspended:
		return true
	}
	return false
}

func (s *Subscription) usageCurrent() bool { return s.UsageTermStart.Equal(s.TermStart) }

// RecordUsage applies a daily seat report. Reports arrive late, twice and
// out of order: the term's maximum is order-insensitive, and a report dated
// outside the current term counts for nothing (max_seats_used resets with
// each term). It changes no version: usage is not announced.
func (s *Subscription) RecordUsage(date time.Time, activeUsers int, now time.Time) Change {
	switch {
	case activeUsers < 0 || activeUsers > catalog.MaxSeats:
		return noOp(s.Status, fmt.Sprintf("seat count %d outside 0..%d", activeUsers, catalog.MaxSeats))
	case !s.running():
		return noOp(s.Status, "not running")
	case day(date).Before(s.TermStart) || !day(date).Before(s.TermEnd):
		return noOp(s.Status, "report outside the current term")
	}
	if !s.usageCurrent() {
		s.MaxSeatsUsed, s.UsageTermStart = 0, s.TermStart
	}
	if activeUsers <= s.MaxSeatsUsed {
		return noOp(s.Status, "not a new maximum")
	}
	s.MaxSeatsUsed = activeUsers
	s.SeatsOwed = max(0, s.MaxSeatsUsed-s.Order.Seats)
	s.UpdatedAt = now
	return Change{From: s.Status, To: s.Status, Reason: fmt.Sprintf("max seats used %d, owed %d", s.MaxSeatsUsed, s.SeatsOwed)}
}

// ErrChange is returned for a change the subscription cannot take.
var ErrChange = failure.Permanentf("subscription change refused")

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrChange, fmt.Sprintf(format, args...))
}

// termCents is what one term of order costs at list price (plans are
// validated at purchase and at each plan change).
func termCents(o catalog.Order) int64 {
	p, _ := catalog.LookupPlan(o.PlanCode)
	return p.TermPriceCents(o)
}

// SeatsCents is the prorated price of n more seats from day at.
func (s *Subscription) SeatsCents(n int, at time.Time) int64 {
	o := catalog.Order{PlanCode: s.Order.PlanCode, Seats: n, TermMonths: s.Order.TermMonths}
	return proration.Cents(termCents(o), s.TermStart, s.TermEnd, at)
}

// AddSeats adds n seats now; they are charged prorated (SeatsCents).
func (s *Subscription) AddSeats(n int, at time.Time) (Change, error) {
	if s.Status != Active {
		return Change{}, refuse("seats can be added to an active subscription, not a %s one", s.Status)
	}
	if n <= 0 {
		return Change{}, refuse("seats to add must be positive, got %d", n)
	}
	if n > catalog.MaxSeats-s.Order.Seats {
		return Change{}, refuse("%d seats added to %d would exceed the limit of %d", n, s.Order.Seats, catalog.MaxSeats)
	}
	s.Order.Seats += n
	s.SeatsOwed = max(0, s.MaxSeatsUsed-s.Order.Seats)
	return s.bump(Change{From: Active, To: Active, Event: catalog.SubscriptionChanged, Reason: fmt.Sprintf("%d seats added", n)}, at), nil
}

// UpgradeCents is what moving to plan costs from day at (prorated difference).
func (s *Subscription) UpgradeCents(plan string, at time.Time) int64 {
	to := s.Order
	to.PlanCode = plan
	return proration.Upgrade(termCents(s.Order), termCents(to), s.TermStart, s.TermEnd, at)
}

// ChangePlan moves to plan: at once when it costs more (an upgrade, charged
// prorated by UpgradeCents), at the next term when it costs less.
func (s *Subscription) ChangePlan(plan string, at time.Time) (Change, error) {
	if s.Status != Active {
		return Change{}, refuse("plan changes need an active subscription, not a %s one", s.Status)
	}
	if _, err := catalog.LookupPlan(plan); err != nil {
		return Change{}, refuse("%v", err)
	}
	to := s.Order
	to.PlanCode = plan
	switch now, next := termCents(s.Order), termCents(to); {
	case plan == s.Order.PlanCode:
		return noOp(s.Status, "already on "+plan), nil
	case next > now:
		s.Order.PlanCode, s.PendingPlan = plan, ""
		return s.bump(Change{From: Active, To: Active, Event: catalog.SubscriptionChanged, Reason: "upgraded to " + plan}, at), nil
	default:
		s.PendingPlan = plan
		return s.bump(Change{From: Active, To: Active, Event: catalog.SubscriptionChanged, Reason: "downgrade to " + plan + " at term end"}, at), nil
	}
}

// PackCents is the prorated price of a pack from day at.
func (s *Subscription) PackCents(kind string, amount int, at time.Time) int64 {
	o := catalog.Order{PlanCode: s.Order.PlanCode, TermMonths: s.Order.TermMonths}
	if kind == PackStorage {
		o.StorageGB = amount
	} else {
		o.ComputeMinutes = amount
	}
	return proration.Cents(termCents(o), s.TermStart, s.TermEnd, at)
}

// AddPack adds a storage or compute-minute pack, once per purchase id.
func (s *Subscription) AddPack(purchaseID, kind string, amount int, at time.Time) (Change, error) {
	if s.Status != Active {
		return Change{}, refuse("packs need an active subscription, not a %s one", s.Status)
	}
	if (kind != PackStorage && kind != PackCompute) || amount <= 0 || purchaseID == "" {
		return Change{}, refuse("pack %q of %d with purchase id %q", kind, amount, purchaseID)
	}
	for _, p := range s.Packs {
		if p.PurchaseID == purchaseID {
			return noOp(s.Status, "pack "+purchaseID+" already added"), nil
		}
	}
	total := &s.Order.ComputeMinutes
	if kind == PackStorage {
		total = &s.Order.StorageGB
	}
	if amount > catalog.MaxPackAmount-*total {
		return Change{}, refuse("%s pack of %d added to %d would exceed the limit of %d", kind, amount, *total, catalog.MaxPackAmount)
	}
	s.Packs = append(s.Packs, Pack{PurchaseID: purchaseID, Kind: kind, Amount: amount, BoughtAt: at})
	*total += amount
	return s.bump(Change{From: Active, To: Active, Event: catalog.SubscriptionChanged, Reason: fmt.Sprintf("%s pack %s of %d", kind, purchaseID, amount)}, at), nil
}

// SetAutoRenew cancels (false) or restores (true) automatic renewal.
func (s *Subscription) SetAutoRenew(on bool, at time.Time) (Change, error) {
	if !s.running() {
		return Change{}, refuse("auto-renew of a %s subscription", s.Status)
	}
	if s.Order.AutoRenew == on {
		return noOp(s.Status, fmt.Sprintf("auto-renew already %t", on)), nil
	}
	s.Order.AutoRenew = on
	if !on && s.OpenRenewalInvoice() == "" {
		// Its term is over and its renewal not yet charged (a catch-up after
		// an outage): nothing pays for today, so it ends now, not at the
		// next review. An open renewal invoice is asked about first (void).
		if c := s.ExpireIfEnded(at); !c.NoOp {
			c.Reason = "auto-renew canceled after the term ended"
			return c, nil
		}
	}
	reason := "auto-renew canceled"
	if on {
		reason = "auto-renew restored"
	}
	return s.bump(Change{From: s.Status, To: s.Status, Event: catalog.SubscriptionChanged, Reason: reason}, at), nil
}

// Action is a scheduled step of a subscription's life.
type Action string

// Actions the renewal tick runs when they fall due.
const (
	ActNotice      Action = "renewal-notice"
	ActCharge      Action = "renewal-charge"
	ActSettle      Action = "settle-charge"
	ActReconNotice Action = "reconciliation-notice"
	ActTrueUp      Action = "true-up"
	ActRetry       Action = "payment-retry"
	ActGrace       Action = "grace"
	ActSuspend     Action = "suspend"
	ActCancel      Action = "cancel"
	ActExpire      Action = "expire"
	// ActVoidRenewal voids the renewal invoice still unpaid when auto-renew
	// was turned off: nothing is charged for a term the customer declined.
	ActVoidRenewal Action = "void-renewal"
	// ActCheckRenewal asks the provider about a renewal invoice raised and
	// still unanswered at term end (its webhook lost, or its failure taken
	// for stale): paid renews the term, unpaid starts dunning.
	ActCheckRenewal Action = "check-renewal"
	// ActSettleAddition asks the provider about a mid-term charge (seats,
	// upgrade, pack, true-up) still unanswered a day after it was sent: a
	// charge that went through is granted (recorded paid) even if its
	// invoice.paid was lost.
	ActSettleAddition Action = "settle-addition"
)

// AdditionAnswerWait is how long a mid-term charge waits for its webhook
// before the provider is asked.
const AdditionAnswerWait = 24 * time.Hour

// Step is one action due at a time. Key names it uniquely for the
// subscription (action, term and ordinal), so it runs once.
type Step struct {
	Action Action
	At     time.Time
	Key    string
	N      int // the quarter or retry number
}

const dayLen = 24 * time.Hour

// quarterDate is the day quarter q (1..3) of the term begins.
func (s *Subscription) quarterDate(q int) time.Time {
	return proration.AddMonths(s.TermStart, 3*q)
}

// Steps lists what is still to happen, soonest first.
func (s *Subscription) Steps(p Policy) []Step {
	var out []Step
	term := s.TermEnd.Format(time.DateOnly)
	add := func(a Action, at time.Time, n int) {
		out = append(out, Step{Action: a, At: at, N: n, Key: fmt.Sprintf("%s/%s/%d", a, term, n)})
	}
	switch s.Status {
	case Active:
		raised := !s.RenewalPendingFor.IsZero() && s.RenewalPendingFor.Equal(s.TermEnd)
		switch {
		case s.voidDue():
			// The renewal was raised (or its outcome is unknown) before
			// auto-renew was turned off: it is voided, not collected.
			at := s.TermEnd.Add(-p.ChargeLead)
			if !s.ChargeUnknownSince.IsZero() && s.ChargeUnknownSince.Before(at) {
				at = s.ChargeUnknownSince
			}
			add(ActVoidRenewal, at, 0)
		case !s.Order.AutoRenew:
			add(ActExpire, s.TermEnd, 0)
		case !s.ChargeUnknownSince.IsZero():
			add(ActSettle, s.ChargeUnknownSince.Add(p.SettleAfter), 0)
		case !raised:
			if !s.NoticeSentFor.Equal(s.TermEnd) {
				add(ActNotice, s.TermEnd.Add(-p.NoticeLead), 0)
			}
			add(ActCharge, s.TermEnd.Add(-p.ChargeLead), 0)
		default:
			// Raised, and neither paid nor failed by term end: ask.
			add(ActCheckRenewal, s.TermEnd, 0)
		}
		s.reconciliationSteps(p, add)
	case PastDue, Grace, Suspended:
		if s.voidDue() {
			// Auto-renew is off: no more retries, the open invoice is voided.
			add(ActVoidRenewal, s.Dunning.FailedAt, 0)
			break
		}
		s.dunningSteps(p, add)
	}
	// In every status: a charge paid after the subscription ended is still
	// recorded paid (not granted, kept for a refund).
	for i, ln := range s.Ledger {
		ended := s.Status == Canceled || s.Status == Expired
		if ln.Kind != ledger.Seats && ln.Kind != ledger.Upgrade && ln.Kind != ledger.Pack && ln.Kind != ledger.TrueUp &&
			(ln.Kind != ledger.Renewal || !ended) {
			// A renewal is asked about by dunning and check-renewal while
			// the subscription runs; once it ended, here.
			continue
		}
		switch {
		case ln.InvoiceID != "" && (ln.Outcome == ledger.Open || ln.Outcome == ledger.Unknown):
			add(ActSettleAddition, ln.OutcomeAt.Add(AdditionAnswerWait), i)
		case ended && ln.Kind == ledger.Renewal && ln.InvoiceID != "" && ln.Outcome == ledger.Failed && ln.AskedAt.IsZero():
			// A failed renewal may have been paid by a retry whose webhook
			// was lost before the subscription ended: ask once.
			add(ActSettleAddition, ln.OutcomeAt.Add(AdditionAnswerWait), i)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// voidDue reports whether an unpaid renewal invoice is outstanding while
// auto-renew is off.
func (s *Subscription) voidDue() bool {
	return !s.Order.AutoRenew && s.OpenRenewalInvoice() != "" &&
		(s.RenewalPendingFor.Equal(s.TermEnd) || !s.ChargeUnknownSince.IsZero() || s.Status != Active)
}

// OpenRenewalInvoice is the renewal invoice still to be paid: the one in
// dunning, else the one raised.
func (s *Subscription) OpenRenewalInvoice() string {
	if s.Status != Active && s.Dunning.InvoiceID != "" {
		return s.Dunning.InvoiceID
	}
	return s.RenewalInvoiceID
}

// dunningSteps adds the next dunning step of an unpaid renewal.
func (s *Subscription) dunningSteps(p Policy, add func(Action, time.Time, int)) {
	switch s.Status {
	case PastDue:
		d := s.Dunning
		if d.Retries < len(p.RetryDays) {
			add(ActRetry, d.FailedAt.Add(time.Duration(p.RetryDays[d.Retries])*dayLen), d.Retries+1)
		} else {
			last := 0
			if len(p.RetryDays) > 0 {
				last = p.RetryDays[len(p.RetryDays)-1]
			}
			// A day for the last retry's result to arrive.
			add(ActGrace, d.FailedAt.Add(time.Duration(last+1)*dayLen), 0)
		}
	case Grace:
		add(ActSuspend, s.Dunning.GraceFrom.Add(time.Duration(p.GraceDays)*dayLen), 0)
	case Suspended:
		add(ActCancel, s.Dunning.SuspendedAt.Add(time.Duration(p.SuspensionDays)*dayLen), 0)
	}
}

// reconciliationSteps adds the quarterly notice and the true-up invoice.
func (s *Subscription) reconciliationSteps(p Policy, add func(Action, time.Time, int)) {
	r := s.Reconciliation
	if !r.TermStart.Equal(s.TermStart) {
		r = Reconciliation{}
	}
	if r.Seats > 0 && !r.Billed {
		add(ActTrueUp, r.NoticedAt.Add(p.TrueUpDelay), r.Quarter)
		return
	}
	if q := r.Quarter + 1; q <= 3 && s.quarterDate(q).Before(s.TermEnd) {
		add(ActReconNotice, s.quarterDate(q), q)
	}
}

// Due lists the steps due at now, soonest first.
func (s *Subscription) Due(now time.Time, p Policy) []Step {
	var due []Step
	for _, st := range s.Steps(p) {
		if !st.At.After(now) {
			due = append(due, st)
		}
	}
	return due
}

// Reschedule sets the next review to the soonest step after now (nil when
// nothing is left).
func (s *Subscription) Reschedule(now time.Time, p Policy) {
	s.NextReviewAt = nil
	for _, st := range s.Steps(p) {
		if st.At.After(now) {
			s.ReviewAt(st.At)
			return
		}
	}
}

// StillDue reports whether step is still to be done: a step is looked up by
// its key, so a step done meanwhile (or no longer wanted) is skipped.
func (s *Subscription) StillDue(step Step, now time.Time, p Policy) bool {
	for _, st := range s.Due(now, p) {
		if st.Key == step.Key {
			return true
		}
	}
	return false
}

// SendRenewalNotice records the notice for the current term.
func (s *Subscription) SendRenewalNotice(now time.Time) Change {
	s.NoticeSentFor = s.TermEnd
	return s.bump(Change{From: s.Status, To: s.Status, Event: catalog.SubscriptionRenewalNotice,
		Reason: fmt.Sprintf("renews on %s with %d seats", s.TermEnd.Format(time.DateOnly), s.RenewalOrder().Seats)}, now)
}

// MarkChargeUnknown records that the renewal charge's outcome is unknown.
func (s *Subscription) MarkChargeUnknown(now time.Time) Change {
	s.ChargeUnknownSince = now
	return s.bump(Change{From: s.Status, To: s.Status, Reason: "renewal charge outcome unknown; Stripe will be asked"}, now)
}

// ClearChargeUnknown records that Stripe never got the charge: it can be raised again.
func (s *Subscription) ClearChargeUnknown(now time.Time) Change {
	s.ChargeUnknownSince = time.Time{}
	return s.bump(Change{From: s.Status, To: s.Status, Reason: "Stripe has no renewal charge; it will be raised"}, now)
}

// NoticeReconciliation looks at quarter q: owed seats are announced and
// invoiced after the policy's delay; none owed closes the quarter.
func (s *Subscription) NoticeReconciliation(q int, now time.Time) Change {
	s.Reconciliation = Reconciliation{TermStart: s.TermStart, Quarter: q}
	owed := 0
	if s.usageCurrent() {
		owed = max(0, s.MaxSeatsUsed-s.Order.Seats)
	}
	if owed == 0 {
		s.Reconciliation.Billed = true
		return s.bump(Change{From: s.Status, To: s.Status, Reason: fmt.Sprintf("quarter %d: no seats owed", q)}, now)
	}
	s.Reconciliation.NoticedAt, s.Reconciliation.Seats = now, owed
	return s.bump(Change{From: s.Status, To: s.Status, Event: catalog.SubscriptionReconciliationNotice,
		Reason: fmt.Sprintf("quarter %d: %d seats owed", q, owed)}, now)
}

// TrueUpSeats is what the quarter's true-up bills when it is invoiced: the
// seats used beyond those held then, never more than were noticed. Seats
// bought since the notice count as held, paid or still being charged (a
// mid-term seat charge sent and not failed): a customer who bought the
// noticed seats is not billed for them twice. A seat charge that fails
// afterwards leaves the overage to the next quarter's notice or the renewal.
func (s *Subscription) TrueUpSeats() int {
	if !s.usageCurrent() {
		return 0
	}
	held := s.Order.Seats
	for _, ln := range s.Ledger {
		if ln.Kind == ledger.Seats && !ln.Granted && ln.Buys.TermStart.Equal(s.TermStart) &&
			(ln.Outcome == ledger.Open || ln.Outcome == ledger.Unknown) {
			held += ln.Buys.Seats
		}
	}
	return min(s.Reconciliation.Seats, max(0, s.MaxSeatsUsed-held))
}

// ReviseTrueUp sets the quarter's seats to what is owed now (TrueUpSeats),
// before the true-up is quoted, and returns them.
func (s *Subscription) ReviseTrueUp() int {
	s.Reconciliation.Seats = s.TrueUpSeats()
	return s.Reconciliation.Seats
}

// TrueUpCents is the quarter's invoice: the seats owed (Reconciliation.Seats,
// revised by ReviseTrueUp) over the rest of the term from now.
func (s *Subscription) TrueUpCents(now time.Time) int64 {
	return s.SeatsCents(s.Reconciliation.Seats, now)
}

// ApplyTrueUp adds the invoiced seats and closes the quarter. A quarter
// whose seats were all bought meanwhile (none left to bill) closes with
// nothing added and no invoice.
func (s *Subscription) ApplyTrueUp(invoiceID string, now time.Time) Change {
	r := &s.Reconciliation
	r.Billed, r.InvoiceID = true, invoiceID
	if r.Seats == 0 {
		return s.bump(Change{From: s.Status, To: s.Status,
			Reason: fmt.Sprintf("quarter %d true-up: the seats owed were bought meanwhile; nothing billed", r.Quarter)}, now)
	}
	s.Order.Seats += r.Seats
	s.SeatsOwed = max(0, s.MaxSeatsUsed-s.Order.Seats)
	return s.bump(Change{From: s.Status, To: s.Status, Event: catalog.SubscriptionChanged,
		Reason: fmt.Sprintf("quarter %d true-up: %d seats added", r.Quarter, r.Seats)}, now).WithCharge(s.Ledger.ByInvoice(invoiceID))
}

// VoidRenewal records that the unpaid renewal invoice was voided at the
// provider because auto-renew was turned off: nothing is collected for the
// next term, dunning stops, and the subscription runs to its term end
// (ExpireIfEnded), or ends now when that is past.
func (s *Subscription) VoidRenewal(now time.Time) Change {
	if ln := s.Ledger.ByInvoice(s.OpenRenewalInvoice()); ln != nil {
		ln.Record(ledger.Void, now, 0)
	}
	s.RenewalPendingFor, s.RenewalInvoiceID, s.RenewalSeats, s.RenewalPlan = time.Time{}, "", 0, ""
	s.ChargeUnknownSince = time.Time{}
	s.Dunning = Dunning{}
	from := s.Status
	c := Change{From: from, To: from, Reason: "auto-renew off: the unpaid renewal invoice was voided"}
	if from != Active {
		s.Status, c.To, c.Event = Active, Active, catalog.SubscriptionChanged
		if !now.Before(s.TermEnd) {
			s.Status, c.To, c.Event = Expired, Expired, catalog.SubscriptionExpired
		}
	}
	return s.bump(c, now)
}

// RecordRetry counts a payment retry raised.
func (s *Subscription) RecordRetry(n int, now time.Time) Change {
	s.Dunning.Retries = n
	return s.bump(Change{From: s.Status, To: s.Status, Reason: fmt.Sprintf("payment retry %d raised", n)}, now)
}

// EnterGrace starts the grace period once every retry failed.
func (s *Subscription) EnterGrace(now time.Time) Change {
	if s.Status != PastDue {
		return noOp(s.Status, "not past due")
	}
	s.Status, s.Dunning.GraceFrom = Grace, now
	return s.bump(Change{From: PastDue, To: Grace, Event: catalog.SubscriptionGrace, Reason: "every payment retry failed"}, now)
}

// Suspend ends the grace period: paid features go, data stays.
func (s *Subscription) Suspend(now time.Time) Change {
	if s.Status != Grace {
		return noOp(s.Status, "not in grace")
	}
	s.Status, s.Dunning.SuspendedAt = Suspended, now
	return s.bump(Change{From: Grace, To: Suspended, Event: catalog.SubscriptionSuspended, Reason: "grace period over, renewal unpaid"}, now)
}

// CancelUnpaid ends a suspended subscription still unpaid.
func (s *Subscription) CancelUnpaid(now time.Time) Change {
	if s.Status != Suspended {
		return noOp(s.Status, "not suspended")
	}
	return s.Cancel(now, "renewal unpaid after suspension")
}

// RenewalPaidAtProvider applies a renewal invoice the provider says is paid
// although its invoice.paid never arrived: the same transition invoice.paid
// applies (the ledger line paid, the term renewed).
func (s *Subscription) RenewalPaidAtProvider(invoiceID string, now time.Time) Change {
	paid := s.ApplyChargeOutcome("", invoiceID, ledger.Paid, 0, now)
	renewed := s.ApplyInvoicePaid(s.TermEnd, now)
	if renewed.NoOp {
		return paid
	}
	renewed.Reason = "renewal invoice " + invoiceID + " found paid at the provider"
	return renewed
}

// RenewalUnpaid starts dunning for a renewal invoice found unpaid with no
// failure applied (its payment_failed webhook lost, or dropped): still open
// at term end, or voided. The schedule runs from when the renewal was
// charged (failedAt), as it would have had the failure arrived; why says
// how it was found.
func (s *Subscription) RenewalUnpaid(invoiceID string, failedAt, now time.Time, why string) Change {
	if s.Status != Active || s.RenewalPendingFor.IsZero() || !s.RenewalPendingFor.Equal(s.TermEnd) {
		return noOp(s.Status, "no renewal pending")
	}
	if failedAt.IsZero() || failedAt.After(now) {
		failedAt = now
	}
	s.Status = PastDue
	s.Dunning = Dunning{FailedAt: failedAt, InvoiceID: invoiceID}
	return s.bump(Change{From: Active, To: PastDue, Event: catalog.SubscriptionPastDue,
		Reason: "renewal invoice " + invoiceID + " " + why}, now)
}
