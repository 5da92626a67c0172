package subscription

import (
	"fmt"
	"slices"
	"time"

	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/ledger"
)

// DefaultCurrency is the currency of subscriptions that predate Currency.
const DefaultCurrency = "usd"

// ChargeCurrency is the currency every charge of the subscription is in.
func (s *Subscription) ChargeCurrency() string {
	if s.Currency == "" {
		return DefaultCurrency
	}
	return s.Currency
}

// Addition is a mid-term purchase: seats, a plan upgrade or a pack.
type Addition struct {
	Kind       ledger.Kind // ledger.Seats, ledger.Upgrade or ledger.Pack
	Seats      int
	PlanCode   string
	PackKind   string
	PackAmount int
	// PurchaseID names a pack (default: the quote's key).
	PurchaseID string
}

// Quote prices an addition at day at and stores it in the ledger under key,
// before anything is charged; nothing is granted until it is paid
// (ApplyChargeOutcome). The addition is tried on a copy first, so a refused
// one is never charged. Quoting key again returns the stored quote.
func (s *Subscription) Quote(key string, a Addition, at time.Time) (*ledger.Line, error) {
	if ln := s.Ledger.Find(key); ln != nil {
		return ln, nil
	}
	if !at.Before(s.TermEnd) {
		// The term is over (the expiry or renewal has not run yet): what is
		// left of it costs nothing, and nothing is sold for free.
		return nil, refuse("the term ended on %s: nothing left to buy in it", s.TermEnd.Format(time.DateOnly))
	}
	trial := *s
	trial.Packs = slices.Clone(s.Packs)
	line := ledger.Line{Key: key, Kind: a.Kind, Currency: s.ChargeCurrency(), QuotedAt: at,
		Buys: ledger.Grant{TermStart: s.TermStart, TermEnd: s.TermEnd}}
	until := s.TermEnd.Format(time.DateOnly)
	var err error
	switch a.Kind {
	case ledger.Seats:
		_, err = trial.AddSeats(a.Seats, at)
		line.AmountCents, line.Buys.Seats = s.SeatsCents(a.Seats, at), a.Seats
		line.Description = fmt.Sprintf("%d %s seats to %s", a.Seats, s.Order.PlanCode, until)
	case ledger.Upgrade:
		_, err = trial.ChangePlan(a.PlanCode, at)
		if err == nil && trial.Order.PlanCode != a.PlanCode {
			err = refuse("%s is not an upgrade of %s", a.PlanCode, s.Order.PlanCode)
		}
		line.AmountCents, line.Buys.PlanCode, line.Buys.PreviousPlan = s.UpgradeCents(a.PlanCode, at), a.PlanCode, s.Order.PlanCode
		line.Description = fmt.Sprintf("upgrade to %s to %s", a.PlanCode, until)
	case ledger.Pack:
		if a.PurchaseID == "" {
			a.PurchaseID = key
		}
		_, err = trial.AddPack(a.PurchaseID, a.PackKind, a.PackAmount, at)
		line.AmountCents, line.Buys.PackKind, line.Buys.PackAmount, line.Buys.PurchaseID = s.PackCents(a.PackKind, a.PackAmount, at), a.PackKind, a.PackAmount, a.PurchaseID
		line.Description = fmt.Sprintf("%s pack of %d to %s", a.PackKind, a.PackAmount, until)
	default:
		err = refuse("%s is not a mid-term purchase", a.Kind)
	}
	if err != nil {
		return nil, err
	}
	return s.Ledger.Quote(line)
}

// QuoteRenewal stores the renewal charge for the next term before it is
// made, priced from this state: what RenewalOrder says it buys.
func (s *Subscription) QuoteRenewal(key string, at time.Time) (*ledger.Line, error) {
	next := s.RenewalOrder()
	plan, err := catalog.LookupPlan(next.PlanCode)
	if err != nil {
		return nil, refuse("%v", err)
	}
	return s.Ledger.Quote(ledger.Line{
		Key: key, Kind: ledger.Renewal, AmountCents: plan.TermPriceCents(next), Currency: s.ChargeCurrency(), QuotedAt: at,
		Description: fmt.Sprintf("%s, %d seats, term from %s", plan.Code, next.Seats, s.TermEnd.Format(time.DateOnly)),
		Buys: ledger.Grant{PlanCode: next.PlanCode, Seats: next.Seats, StorageGB: next.StorageGB, ComputeMinutes: next.ComputeMinutes,
			TermStart: s.TermEnd, TermEnd: s.TermEnd.AddDate(0, s.Order.TermMonths, 0)},
	})
}

// QuoteTrueUp stores a quarter's true-up before it is charged.
func (s *Subscription) QuoteTrueUp(key string, cents int64, description string, at time.Time) (*ledger.Line, error) {
	return s.Ledger.Quote(ledger.Line{
		Key: key, Kind: ledger.TrueUp, AmountCents: cents, Currency: s.ChargeCurrency(), QuotedAt: at, Description: description,
		Buys: ledger.Grant{Seats: s.Reconciliation.Seats, TermStart: s.TermStart, TermEnd: s.TermEnd},
	})
}

// RecordPurchase enters the checkout's payment in the ledger, granted with
// the subscription when it is paid.
func (s *Subscription) RecordPurchase(amountCents int64, paid bool, at time.Time) {
	ln, err := s.Ledger.Quote(ledger.Line{
		Key: "purchase-" + s.PurchaseID, Kind: ledger.Purchase, AmountCents: amountCents, Currency: s.ChargeCurrency(), QuotedAt: at,
		Description: fmt.Sprintf("%s, %d seats, first term", s.Order.PlanCode, s.Order.Seats),
		Buys:        ledger.Grant{PlanCode: s.Order.PlanCode, Seats: s.Order.Seats, TermStart: s.TermStart, TermEnd: s.TermEnd},
	})
	if err != nil {
		return
	}
	ln.Sent(s.PurchaseID, false, at)
	if paid {
		ln.Record(ledger.Paid, at, amountCents)
		ln.Granted, ln.GrantedAt = true, at
	}
}

// ChargeSent records that the charge quoted under key was made on invoiceID
// (unknown: the pay call got no answer). It announces nothing: what the
// charge buys is granted when the provider says it is paid.
func (s *Subscription) ChargeSent(key, invoiceID string, unknown bool, now time.Time) Change {
	ln := s.Ledger.Find(key)
	if ln == nil {
		return noOp(s.Status, "no quote "+key)
	}
	ln.Sent(invoiceID, unknown, now)
	s.UpdatedAt = now
	// A review at the next tick schedules asking the provider should the
	// answer not come (ActSettleAddition). The version moves with it: a
	// renewal-due event is named by version and review time, and one
	// already handled for this pair would be taken for a duplicate.
	if s.NextReviewAt == nil || s.NextReviewAt.After(now) {
		s.ReviewAt(now)
	}
	s.Version++
	return Change{From: s.Status, To: s.Status, Reason: fmt.Sprintf("charge %s sent on invoice %s", key, invoiceID)}
}

// ApplyChargeOutcome records what the provider says of a ledger line (found
// by key, else by invoice) and grants or takes back what it bought:
//   - paid: a mid-term addition is applied now (a renewal's term is
//     extended by ApplyInvoicePaid, which the same event also runs);
//   - refunded in whole or dispute lost: the addition is taken back; a
//     refunded purchase or renewal ends the subscription;
//   - anything else is recorded only.
//
// A paid addition that can no longer be applied (the subscription is no
// longer active) is kept as "paid, not granted" for an operator to refund.
func (s *Subscription) ApplyChargeOutcome(key, invoiceID string, o ledger.Outcome, cents int64, at time.Time) Change {
	ln := s.Ledger.Find(key)
	if ln == nil {
		ln = s.Ledger.ByInvoice(invoiceID)
	}
	if ln == nil {
		return noOp(s.Status, fmt.Sprintf("no ledger line for charge %q / invoice %q", key, invoiceID))
	}
	if !ln.Record(o, at, cents) {
		return noOp(s.Status, fmt.Sprintf("charge %s already %s", ln.Key, ln.Outcome))
	}
	return s.settle(ln, o, at).WithCharge(ln)
}

// settle applies a line's newly recorded outcome: grant, take back, or note.
func (s *Subscription) settle(ln *ledger.Line, o ledger.Outcome, at time.Time) Change {
	switch {
	case ln.IsPaid() && !ln.Granted && !ln.Revoked:
		return s.grant(ln, at)
	case ln.TakesBack() && ln.Granted && !ln.Revoked:
		return s.takeBack(ln, at)
	}
	s.UpdatedAt = at
	c := Change{From: s.Status, To: s.Status, Reason: fmt.Sprintf("charge %s %s", ln.Key, ln.Outcome)}
	if o == ledger.Disputed {
		c.Event = catalog.PaymentDisputed
	}
	return c
}

func (s *Subscription) grant(ln *ledger.Line, at time.Time) Change {
	var c Change
	var err error
	if (ln.Kind == ledger.Seats || ln.Kind == ledger.Upgrade || ln.Kind == ledger.Pack) && !ln.Buys.TermStart.Equal(s.TermStart) {
		// Paid after its term was over (renewed meanwhile): what it bought
		// was for that term; kept as paid, not granted, for a refund.
		s.UpdatedAt = at
		return Change{From: s.Status, To: s.Status, Reason: fmt.Sprintf("charge %s paid, not granted: its term from %s is over", ln.Key, ln.Buys.TermStart.Format(time.DateOnly))}
	}
	// Paid for the current term, which dunning (of the next one) keeps
	// running: granted in past due and grace as when active.
	from := s.Status
	if from == PastDue || from == Grace {
		s.Status = Active
		defer func() { s.Status = from }()
	}
	switch ln.Kind {
	case ledger.Seats:
		c, err = s.AddSeats(ln.Buys.Seats, at)
	case ledger.Upgrade:
		c, err = s.ChangePlan(ln.Buys.PlanCode, at)
	case ledger.Pack:
		c, err = s.AddPack(ln.Buys.PurchaseID, ln.Buys.PackKind, ln.Buys.PackAmount, at)
	default: // purchase, renewal, true-up: their own transitions grant them
		ln.Granted, ln.GrantedAt = true, at
		s.UpdatedAt = at
		return Change{From: s.Status, To: s.Status, Reason: fmt.Sprintf("charge %s paid", ln.Key)}
	}
	if err != nil {
		s.UpdatedAt = at
		return Change{From: s.Status, To: s.Status, Reason: fmt.Sprintf("charge %s paid, not granted: %v", ln.Key, err)}
	}
	ln.Granted, ln.GrantedAt = true, at
	c.From, c.To = from, from
	c.Reason = fmt.Sprintf("charge %s paid: %s", ln.Key, c.Reason)
	return c
}

// takeBack undoes what a refunded or lost line bought.
func (s *Subscription) takeBack(ln *ledger.Line, at time.Time) Change {
	ln.Revoked = true
	why := fmt.Sprintf("charge %s %s", ln.Key, ln.Outcome)
	if (ln.Kind == ledger.Seats || ln.Kind == ledger.Upgrade || ln.Kind == ledger.Pack) && !ln.Buys.TermStart.Equal(s.TermStart) {
		// Bought for a term that is over: the current term's seats, plan
		// and packs were paid by its renewal, not by this charge.
		s.UpdatedAt = at
		return Change{From: s.Status, To: s.Status, Reason: why + "; its term is over, nothing of the current term taken back"}
	}
	switch ln.Kind {
	case ledger.Seats:
		s.Order.Seats = max(1, s.Order.Seats-ln.Buys.Seats)
	case ledger.Upgrade:
		if s.Order.PlanCode == ln.Buys.PlanCode && ln.Buys.PreviousPlan != "" {
			s.Order.PlanCode = ln.Buys.PreviousPlan
		}
	case ledger.Pack:
		s.removePack(ln.Buys.PurchaseID)
	case ledger.Purchase, ledger.Renewal:
		if s.paysCurrentTerm(ln) {
			return s.Cancel(at, why+": what it paid for is taken back")
		}
		// An earlier term's charge: that term is over, and the current one
		// was paid by its own renewal, which is not taken back.
		s.UpdatedAt = at
		return Change{From: s.Status, To: s.Status, Reason: why + "; its term is over, the current term is paid by its renewal"}
	case ledger.TrueUp:
		// The seats it raised go back; still used, they are owed again
		// and billed by the next true-up or the renewal.
		if !ln.Buys.TermStart.Equal(s.TermStart) {
			s.UpdatedAt = at
			return Change{From: s.Status, To: s.Status, Reason: why + "; its term is over, nothing of the current term taken back"}
		}
		s.Order.Seats = max(1, s.Order.Seats-ln.Buys.Seats)
	}
	s.SeatsOwed = max(0, s.MaxSeatsUsed-s.Order.Seats)
	return s.bump(Change{From: s.Status, To: s.Status, Event: catalog.SubscriptionChanged, Reason: why + ": taken back"}, at)
}

func (s *Subscription) removePack(purchaseID string) {
	for i, p := range s.Packs {
		if p.PurchaseID != purchaseID {
			continue
		}
		if p.Kind == PackStorage {
			s.Order.StorageGB = max(0, s.Order.StorageGB-p.Amount)
		} else {
			s.Order.ComputeMinutes = max(0, s.Order.ComputeMinutes-p.Amount)
		}
		s.Packs = slices.Delete(s.Packs, i, i+1)
		return
	}
}

// paysCurrentTerm reports whether a purchase or renewal line paid the term
// running now. A purchase line may carry no term (recorded before an async
// payment settled): it paid the current term unless a paid renewal did.
func (s *Subscription) paysCurrentTerm(ln *ledger.Line) bool {
	if ln.Buys.TermStart.Equal(s.TermStart) {
		return true
	}
	if ln.Kind != ledger.Purchase {
		return false
	}
	for _, r := range s.Ledger {
		if r.Kind == ledger.Renewal && r.Buys.TermStart.Equal(s.TermStart) && r.IsPaid() {
			return false
		}
	}
	return true
}
