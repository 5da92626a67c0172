// Package subscription is the subscription state machine: pure domain logic,
// no I/O. Every transition returns a Change saying what happened and which
// subscription event announces it; a stale or repeated input is a no-op
// Change with a reason, never an overwrite.
package subscription

import (
	"errors"
	"fmt"
	"time"

	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/ledger"
	"fulfillment/shared/runtime/failure"
)

// Status is where a subscription is in its life.
type Status string

const (
	Pending Status = "pending"  // bought, payment still settling (async methods)
	Active  Status = "active"   // paid for the current term
	PastDue Status = "past_due" // a renewal payment failed; retries scheduled, features kept
	// Grace: every retry failed; features kept for the grace period.
	Grace Status = "grace"
	// Suspended: paid features deprovisioned, data kept; a payment restores it.
	Suspended Status = "suspended"
	Canceled  Status = "canceled" // ended early: payment never settled or canceled at the provider
	Expired   Status = "expired"  // term ended without renewal
)

// Subscription is one customer's subscription to a plan for a namespace or instance.
type Subscription struct {
	ID         string           `firestore:"id" json:"id"`
	Status     Status           `firestore:"status" json:"status"`
	Order      catalog.Order    `firestore:"order" json:"order"`
	Customer   catalog.Customer `firestore:"customer" json:"customer"`
	PurchaseID string           `firestore:"purchase_id" json:"purchase_id"`
	TermStart  time.Time        `firestore:"term_start" json:"term_start"`
	TermEnd    time.Time        `firestore:"term_end" json:"term_end"`
	// RenewalPendingFor is the start of the term a renewal invoice was raised
	// for, zero when none is outstanding.
	RenewalPendingFor time.Time `firestore:"renewal_pending_for" json:"renewal_pending_for"`
	RenewalInvoiceID  string    `firestore:"renewal_invoice_id" json:"renewal_invoice_id"`
	// RenewalSeats and RenewalPlan are what the raised renewal invoice pays
	// for: applied when it is paid.
	RenewalSeats int    `firestore:"renewal_seats" json:"renewal_seats"`
	RenewalPlan  string `firestore:"renewal_plan" json:"renewal_plan"`
	// ChargeUnknownSince is set when the renewal charge's outcome is unknown
	// (Stripe timed out): it is settled by asking Stripe, never charged blindly.
	ChargeUnknownSince time.Time `firestore:"charge_unknown_since" json:"charge_unknown_since"`
	// NoticeSentFor is the term end the renewal notice was sent for.
	NoticeSentFor time.Time `firestore:"notice_sent_for" json:"notice_sent_for"`
	// PendingPlan is a downgrade that takes effect at the next term.
	PendingPlan string `firestore:"pending_plan" json:"pending_plan,omitempty"`
	// Seat usage of the current term, from the daily seat reports.
	MaxSeatsUsed   int       `firestore:"max_seats_used" json:"max_seats_used"`
	SeatsOwed      int       `firestore:"seats_owed" json:"seats_owed"`
	UsageTermStart time.Time `firestore:"usage_term_start" json:"usage_term_start"`
	// Reconciliation is the last quarterly true-up looked at.
	Reconciliation Reconciliation `firestore:"reconciliation" json:"reconciliation"`
	Dunning        Dunning        `firestore:"dunning" json:"dunning"`
	Packs          []Pack         `firestore:"packs" json:"packs,omitempty"`
	// Currency is what the customer paid the checkout in; every later
	// charge is in it ("usd" for subscriptions bought before it was kept).
	Currency string `firestore:"currency" json:"currency,omitempty"`
	// SavedPaymentFrom is the payment (or setup) intent of a checkout made
	// through the checkout function, which saved the card for off-session
	// renewals: renewal and change invoices are charged with it (empty for
	// subscriptions bought otherwise).
	SavedPaymentFrom string `firestore:"saved_payment_from" json:"saved_payment_from,omitempty"`
	// Ledger is every charge asked for, its outcome and what it granted.
	Ledger ledger.Ledger `firestore:"ledger" json:"ledger,omitempty"`
	// NextReviewAt is when the renewal tick should look at this subscription
	// again (nil: never). Ticks query on it, so it is the one index renewals need.
	NextReviewAt *time.Time `firestore:"next_review_at" json:"next_review_at"`
	// LastEventAt is the time of the newest change applied, ours or the
	// provider's.
	LastEventAt time.Time `firestore:"last_event_at" json:"last_event_at"`
	// ProviderEventAt is the provider time of the newest provider event
	// applied (SawProviderEvent): a provider event older than it is stale.
	// Our own changes never move it, so a notice or a review after a
	// payment failed does not make that failure look stale.
	ProviderEventAt time.Time `firestore:"provider_event_at" json:"provider_event_at"`
	Version         int64     `firestore:"version" json:"version"`
	UpdatedAt       time.Time `firestore:"updated_at" json:"updated_at"`
}

// Change is the outcome of one input.
type Change struct {
	From, To Status
	// Event is the subscription event type to announce, "" for none.
	Event string
	// NoOp says the input changed nothing; Reason says why.
	NoOp   bool
	Reason string
	// Charge is a copy of the ledger line the change was paid by or
	// raised, announced with it (Announcement); nil for none.
	Charge *ledger.Line
}

// ErrInvalidOrder is returned for an order that cannot be fulfilled.
var ErrInvalidOrder = errors.New("invalid order")

// ValidateOrder refuses orders no one can provision. Its errors are permanent:
// retrying an unknown plan never helps.
func ValidateOrder(o catalog.Order) error {
	if _, err := catalog.LookupPlan(o.PlanCode); err != nil {
		return failure.Permanent(fmt.Errorf("%w: %w", ErrInvalidOrder, err))
	}
	switch {
	case o.Seats <= 0:
		return failure.Permanent(fmt.Errorf("%w: seats must be positive, got %d", ErrInvalidOrder, o.Seats))
	case o.Deployment == catalog.DeploymentSaaS && o.NamespaceID == "":
		return failure.Permanent(fmt.Errorf("%w: a SaaS order needs a namespace_id", ErrInvalidOrder))
	case o.Deployment == catalog.DeploymentSelfManaged && o.InstanceID == "":
		return failure.Permanent(fmt.Errorf("%w: a self-managed order needs an instance_id", ErrInvalidOrder))
	case o.Deployment != catalog.DeploymentSaaS && o.Deployment != catalog.DeploymentSelfManaged:
		return failure.Permanent(fmt.Errorf("%w: unknown deployment %q", ErrInvalidOrder, o.Deployment))
	case o.StorageGB < 0 || o.ComputeMinutes < 0:
		return failure.Permanent(fmt.Errorf("%w: negative add-on", ErrInvalidOrder))
	}
	if err := catalog.CheckLimits(o); err != nil {
		return failure.Permanent(fmt.Errorf("%w: %w", ErrInvalidOrder, err))
	}
	return nil
}

// Purchase starts a subscription from a completed checkout. paid is false for
// payment methods that settle later (the subscription waits in Pending).
func Purchase(id, purchaseID string, o catalog.Order, c catalog.Customer, paid bool, at time.Time) (*Subscription, Change, error) {
	if err := ValidateOrder(o); err != nil {
		return nil, Change{}, err
	}
	if o.TermMonths <= 0 {
		o.TermMonths = 12
	}
	s := &Subscription{ID: id, PurchaseID: purchaseID, Order: o, Customer: c, Status: Pending, LastEventAt: at, ProviderEventAt: at}
	if !paid {
		return s, s.bump(Change{From: "", To: Pending}, at), nil
	}
	s.startTerm(at)
	s.Status = Active
	return s, s.bump(Change{From: "", To: Active, Event: catalog.SubscriptionActivated}, at), nil
}

func (s *Subscription) startTerm(at time.Time) {
	s.TermStart = day(at)
	s.TermEnd = s.TermStart.AddDate(0, s.Order.TermMonths, 0)
	s.UsageTermStart = s.TermStart
}

// day truncates to midnight UTC: terms run in whole days.
func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// bump records an applied change: a new version, the newest provider time,
// and a review at the next tick (which schedules what the change calls for).
func (s *Subscription) bump(c Change, at time.Time) Change {
	s.Version++
	s.ReviewAt(at)
	if at.After(s.LastEventAt) {
		s.LastEventAt = at
	}
	s.UpdatedAt = at
	return c
}

func noOp(s Status, reason string) Change {
	return Change{From: s, To: s, NoOp: true, Reason: reason}
}

// stale reports whether a provider event at time at is older than the
// newest provider event applied.
func (s *Subscription) stale(at time.Time) bool { return at.Before(s.ProviderEventAt) }

// SawProviderEvent records the provider time of an event applied.
func (s *Subscription) SawProviderEvent(at time.Time) {
	if at.After(s.ProviderEventAt) {
		s.ProviderEventAt = at
	}
}

// SettleInitialPayment applies the late result of a pending checkout payment.
func (s *Subscription) SettleInitialPayment(succeeded bool, at time.Time) Change {
	if s.Status != Pending {
		return noOp(s.Status, "initial payment already settled")
	}
	if !succeeded {
		s.Status = Canceled
		return s.bump(Change{From: Pending, To: Canceled, Event: catalog.SubscriptionCanceled, Reason: "initial payment failed"}, at)
	}
	s.startTerm(at)
	s.Status = Active
	return s.bump(Change{From: Pending, To: Active, Event: catalog.SubscriptionActivated}, at)
}

// MarkRenewalPending records that a renewal invoice was raised for the term
// starting at the current term end. What its payment grants (RenewalSeats,
// RenewalPlan) is what the quoted renewal line buys, so the term is renewed
// with what was priced; a subscription without a quoted line (one raised
// before the ledger) takes RenewalOrder. It reports false if one already was.
func (s *Subscription) MarkRenewalPending(invoiceID string, now time.Time) bool {
	if !s.RenewalPendingFor.IsZero() && s.RenewalPendingFor.Equal(s.TermEnd) {
		return false
	}
	next := s.RenewalOrder()
	if ln := s.RenewalLine(); ln != nil && ln.Buys.Seats > 0 && ln.Buys.PlanCode != "" {
		next.Seats, next.PlanCode = ln.Buys.Seats, ln.Buys.PlanCode
	}
	s.RenewalPendingFor = s.TermEnd
	s.RenewalInvoiceID = invoiceID
	s.RenewalSeats, s.RenewalPlan = next.Seats, next.PlanCode
	s.ChargeUnknownSince = time.Time{}
	s.Version++
	s.UpdatedAt = now
	return true
}

// RenewalLine is the ledger line quoted for the renewal of the term
// starting at the current term end, or nil.
func (s *Subscription) RenewalLine() *ledger.Line {
	for i := len(s.Ledger) - 1; i >= 0; i-- {
		if ln := &s.Ledger[i]; ln.Kind == ledger.Renewal && ln.Buys.TermStart.Equal(s.TermEnd) {
			return ln
		}
	}
	return nil
}

// RenewalOrder is what the next term is charged for: the larger of the
// seats bought and the most seats used this term, at the plan the next term
// runs on (a pending downgrade applies there).
func (s *Subscription) RenewalOrder() catalog.Order {
	o := s.Order
	if s.usageCurrent() && s.MaxSeatsUsed > o.Seats {
		o.Seats = s.MaxSeatsUsed
	}
	if s.PendingPlan != "" {
		o.PlanCode = s.PendingPlan
	}
	return o
}

// ApplyInvoicePaid extends the term when the invoice paid the next term.
// termStart is the start of the term the invoice pays for.
func (s *Subscription) ApplyInvoicePaid(termStart, at time.Time) Change {
	switch {
	case s.Status == Canceled || s.Status == Expired:
		return noOp(s.Status, "subscription already ended")
	case s.Status == Pending:
		return noOp(s.Status, "initial payment not settled")
	case termStart.Before(s.TermEnd):
		return noOp(s.Status, "invoice pays a term already paid")
	case termStart.After(s.TermEnd):
		return noOp(s.Status, fmt.Sprintf("invoice pays a term starting %s, not the next one (%s)", termStart.Format(time.DateOnly), s.TermEnd.Format(time.DateOnly)))
	}
	from := s.Status
	// What the renewal was charged for: the raised invoice's seats and plan,
	// else (a renewal whose pay call got no answer was never marked
	// pending) its quoted line's, else RenewalOrder, which applies a
	// pending downgrade.
	next := s.RenewalOrder()
	if ln := s.RenewalLine(); ln != nil && ln.Buys.Seats > 0 && ln.Buys.PlanCode != "" {
		next.Seats, next.PlanCode = ln.Buys.Seats, ln.Buys.PlanCode
		// Packs are bought for a term: the next term holds the storage and
		// compute minutes its renewal was charged for, not a pack bought
		// after the renewal was quoted.
		next.StorageGB, next.ComputeMinutes = ln.Buys.StorageGB, ln.Buys.ComputeMinutes
	}
	if s.RenewalSeats > 0 {
		next.Seats, next.PlanCode = s.RenewalSeats, s.RenewalPlan
	}
	s.Order.Seats, s.Order.PlanCode = next.Seats, next.PlanCode
	s.Order.StorageGB, s.Order.ComputeMinutes = next.StorageGB, next.ComputeMinutes
	// A downgrade asked for after the renewal was charged is not lost: the
	// term just paid runs on what it was charged for, the next on the
	// downgrade.
	if s.PendingPlan == next.PlanCode {
		s.PendingPlan = ""
	}
	s.TermStart = s.TermEnd
	s.TermEnd = s.TermStart.AddDate(0, s.Order.TermMonths, 0)
	s.RenewalPendingFor = time.Time{}
	s.RenewalInvoiceID, s.RenewalSeats, s.RenewalPlan = "", 0, ""
	s.ChargeUnknownSince = time.Time{}
	s.MaxSeatsUsed, s.SeatsOwed, s.UsageTermStart = 0, 0, s.TermStart
	s.Dunning = Dunning{}
	s.Status = Active
	return s.bump(Change{From: from, To: Active, Event: catalog.SubscriptionRenewed}, at)
}

// ApplyPaymentFailed moves an active subscription whose renewal payment
// failed to PastDue and starts dunning. A failure older than what was
// applied is stale; a failed retry while in dunning changes nothing (the
// schedule moves on by time).
func (s *Subscription) ApplyPaymentFailed(termStart, at time.Time, invoiceID string) Change {
	switch {
	case s.Status == PastDue || s.Status == Grace || s.Status == Suspended:
		return noOp(s.Status, "already in dunning")
	case s.Status != Active:
		return noOp(s.Status, "no payment expected in this status")
	case termStart.Before(s.TermEnd):
		return noOp(s.Status, "failure for a term already paid")
	case s.stale(at):
		return noOp(s.Status, "stale payment failure")
	}
	s.Status = PastDue
	s.Dunning = Dunning{FailedAt: at, InvoiceID: invoiceID}
	if invoiceID == "" {
		s.Dunning.InvoiceID = s.RenewalInvoiceID
	}
	return s.bump(Change{From: Active, To: PastDue, Event: catalog.SubscriptionPastDue, Reason: "renewal payment failed"}, at)
}

// Cancel ends the subscription at once (canceled at the provider).
func (s *Subscription) Cancel(at time.Time, reason string) Change {
	if s.Status == Canceled || s.Status == Expired {
		return noOp(s.Status, "already ended")
	}
	from := s.Status
	s.Status = Canceled
	return s.bump(Change{From: from, To: Canceled, Event: catalog.SubscriptionCanceled, Reason: reason}, at)
}

// ExpireIfEnded expires a subscription that reached its term end without a
// paid renewal.
func (s *Subscription) ExpireIfEnded(now time.Time) Change {
	if s.Status != Active {
		return noOp(s.Status, "not running")
	}
	if now.Before(s.TermEnd) {
		return noOp(s.Status, "term not ended")
	}
	if s.Order.AutoRenew {
		// An unpaid renewal is a payment problem for dunning, not an expiry.
		return noOp(s.Status, "auto-renewing")
	}
	from := s.Status
	s.Status = Expired
	return s.bump(Change{From: from, To: Expired, Event: catalog.SubscriptionExpired, Reason: "term ended"}, now)
}

// Announcement is the state announced with change c: the snapshot, and the
// ledger line c was paid by or raised, in the subscription's currency when
// the line names none.
func (s *Subscription) Announcement(c Change) catalog.SubscriptionSnapshot {
	snap := s.Snapshot(c.Reason)
	if ln := c.Charge; ln != nil {
		amount := ln.AmountCents
		if ln.PaidCents > 0 {
			amount = ln.PaidCents
		}
		cur := ln.Currency
		if cur == "" {
			cur = s.ChargeCurrency()
		}
		snap.Charge = &catalog.Charge{Key: ln.Key, Kind: string(ln.Kind), Description: ln.Description, AmountCents: amount,
			TaxCents: ln.TaxCents, Currency: cur, InvoiceID: ln.InvoiceID, Outcome: string(ln.Outcome), At: ln.OutcomeAt, Seats: ln.Buys.Seats}
	}
	return snap
}

// AnnouncementUnder is Announcement with the steps still to come under p,
// so readers tell the dates (and a true-up's amount) this subscription will
// be acted on, not ones recomputed on their own clock and settings.
func (s *Subscription) AnnouncementUnder(c Change, p Policy) catalog.SubscriptionSnapshot {
	snap := s.Announcement(c)
	for _, st := range s.Steps(p) {
		next := catalog.ScheduledStep{Action: string(st.Action), At: st.At}
		if st.Action == ActTrueUp {
			next.AmountCents = s.TrueUpCents(st.At)
		}
		snap.Schedule = append(snap.Schedule, next)
	}
	return snap
}

// WithCharge is c announced with a copy of ln (nil: none).
func (c Change) WithCharge(ln *ledger.Line) Change {
	if ln != nil {
		cp := *ln
		c.Charge = &cp
	}
	return c
}

// Snapshot is the state announced in subscription events.
func (s *Subscription) Snapshot(reason string) catalog.SubscriptionSnapshot {
	return catalog.SubscriptionSnapshot{
		ID: s.ID, Version: s.Version, Status: string(s.Status), Order: s.Order, Customer: s.Customer,
		TermStart: s.TermStart, TermEnd: s.TermEnd, PurchaseID: s.PurchaseID, Reason: reason,
		MaxSeatsUsed: s.MaxSeatsUsed, SeatsOwed: s.SeatsOwed, PendingPlan: s.PendingPlan,
		RenewalSeats: s.RenewalOrder().Seats,
	}
}
