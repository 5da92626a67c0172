package model

import (
	"fmt"
	"strings"
	"time"

	"fulfillment/shared/domain/idempotency"
	"fulfillment/shared/domain/ledger"
	"fulfillment/shared/domain/subscription"
)

// Invariant names, as MODEL_INVARIANTS lists them.
const (
	invGrantedOnlyPaid   = "granted_only_paid"
	invNoChargeAfterEnd  = "no_charge_after_end"
	invChargeEqualsPrice = "charge_equals_price"
	invNoSeatBilledTwice = "no_seat_billed_twice"
	invChargeRecorded    = "charge_recorded"
	invConverges         = "converges"
	invPaidNotRevoked    = "paid_not_revoked"
	// Checked when provisioning announces an activation code (instance_test.go).
	invOneCodeWhileRunning = "one_code_while_running"
	invSilentNotRenewed    = "silent_not_renewed"
)

// invariant is one property checked after every step: it returns what
// violates it now, empty when it holds.
type invariant struct {
	name  string
	check func(h *harness) []string
}

var invariants = []invariant{
	{invGrantedOnlyPaid, grantedOnlyPaid},
	{invNoChargeAfterEnd, noChargeAfterEnd},
	{invChargeEqualsPrice, chargeEqualsPrice},
	{invNoSeatBilledTwice, noSeatBilledTwice},
	{invChargeRecorded, chargeRecorded},
	{invConverges, converges},
	{invPaidNotRevoked, paidNotRevoked},
	{invOneCodeWhileRunning, func(h *harness) []string { return h.pending[invOneCodeWhileRunning] }},
	{invSilentNotRenewed, silentInstanceNotRenewed},
	{invTrialBounded, trialBounded},
}

var planRank = map[string]int{"": 0, "free": 0, "premium": 1, "ultimate": 2}

// entitlement is what was paid for one term: the base purchase or renewal
// and every paid charge added to it in that term.
type entitlement struct {
	termStart, termEnd time.Time
	plan               string
	seats              int
	storageGB          int
	computeMinutes     int
	inGrace            bool
	graceEnd           time.Time
}

// dunningSpan is how long the documented schedule keeps features after the
// first failed renewal payment: the last retry, a day for its result, and
// the grace days (subscription.Policy); then the subscription is suspended.
func dunningSpan(p subscription.Policy) time.Duration {
	last := 0
	if len(p.RetryDays) > 0 {
		last = p.RetryDays[len(p.RetryDays)-1]
	}
	return time.Duration(last+1+p.GraceDays) * 24 * time.Hour
}

// paidInvoices are the provider's paid charges for subscription id, less
// those refunded in whole or lost in a dispute once the system was told
// (rule 9: a full refund or a lost dispute takes back what the line bought).
func (h *harness) paidInvoices(id string) []*invoice {
	var out []*invoice
	for _, inv := range h.pay.invoices {
		if inv.sub == id && inv.paid && !inv.takeBackKnown {
			out = append(out, inv)
		}
	}
	return out
}

// termEntitlement sums what was paid for the term starting at start.
func (h *harness) termEntitlement(id string, base *invoice) entitlement {
	e := entitlement{termStart: base.bought.termStart, termEnd: base.bought.termEnd, plan: base.bought.plan, seats: base.bought.seats,
		storageGB: base.bought.storageGB, computeMinutes: base.bought.computeMinutes}
	for _, inv := range h.pay.invoices {
		// A true-up's seats are raised when it is invoiced, paid or not
		// (docs/subscription-lifecycle.md: the customer used them
		// already); the other additions count once paid. None counts
		// once refunded in whole or lost and the system was told.
		if inv.sub != id || inv.takeBackKnown || !(inv.paid || inv.kind == kindTrueUp) {
			continue
		}
		if inv.bought.base || !inv.bought.termStart.Equal(e.termStart) {
			continue
		}
		e.seats += inv.bought.seats
		e.storageGB += inv.bought.storageGB
		e.computeMinutes += inv.bought.computeMinutes
		if planRank[inv.bought.upgradeTo] > planRank[e.plan] {
			e.plan = inv.bought.upgradeTo
		}
	}
	return e
}

// paidNow is the entitlement of a paid term covering now; failing that,
// the last paid term's while the documented grace after it lasts.
func (h *harness) paidNow(m *modelSub) (entitlement, bool) {
	now := h.now()
	var last *invoice
	var covering, ended []*invoice
	for _, inv := range h.paidInvoices(m.id) {
		if !inv.bought.base {
			continue
		}
		// A paid renewal is granted from its payment, not from its term's
		// start: invoice.paid renews the subscription at once and
		// provisioning follows (docs/subscription-lifecycle.md), so the
		// next term's plan and seats (those the customer already uses)
		// may be held up to the charge lead early; until the system
		// learns of that payment it still runs the current term. Both
		// are paid: what either grants is.
		from := inv.bought.termStart
		if inv.paidAt.Before(from) {
			from = inv.paidAt
		}
		if !now.Before(from) && now.Before(inv.bought.termEnd) {
			covering = append(covering, inv)
		} else if !now.Before(inv.bought.termEnd) && now.Before(maxTime(inv.bought.termEnd, h.outageEnd).Add(24*time.Hour)) {
			// Just ended, or ended during a scheduler outage, while a later
			// paid term covers now: its extras stay until a tick renews
			// the subscription (the day of grace the no-renewal case below
			// gives too).
			ended = append(ended, inv)
		}
		if !now.Before(inv.bought.termEnd) && (last == nil || inv.bought.termEnd.After(last.bought.termEnd)) {
			last = inv
		}
	}
	merged := func(first *invoice, more []*invoice) entitlement {
		e := h.termEntitlement(m.id, first)
		for _, inv := range more {
			e.widen(h.termEntitlement(m.id, inv))
		}
		return e
	}
	if last == nil {
		if len(covering) > 0 {
			return merged(covering[0], append(covering[1:], ended...)), true
		}
		return entitlement{}, false
	}
	// Grace: counted from the first attempt to charge the renewal (or from
	// when it should have been charged), or from the end of a scheduler
	// outage, which delays every step.
	unpaid := last.bought.termEnd
	anchor := unpaid.Add(-h.policy.ChargeLead)
	if r := h.pay.byKey[idempotency.Renewal(m.id, unpaid)]; r != nil && len(r.attempts) > 0 {
		anchor = r.attempts[0]
	}
	if h.outageEnd.After(anchor) {
		anchor = h.outageEnd
	}
	graceEnd := anchor.Add(dunningSpan(h.policy) + 24*time.Hour)
	if !m.autoRenew && h.pay.byKey[idempotency.Renewal(m.id, unpaid)] == nil {
		graceEnd = maxTime(unpaid, h.outageEnd).Add(24 * time.Hour) // no renewal: the term simply ends
	}
	// The renewal the system is still dunning for, a term behind the
	// provider when a paid retry's webhook was lost, keeps its own grace,
	// auto-renew turned off since or not: it was charged before. (The
	// model first judged such a subscription by the next term's end alone.)
	if s := h.viewSub(m.id); s != nil && !s.RenewalPendingFor.IsZero() {
		if r := h.pay.byKey[idempotency.Renewal(m.id, s.RenewalPendingFor)]; r != nil && len(r.attempts) > 0 {
			graceEnd = maxTime(graceEnd, maxTime(r.attempts[0], h.outageEnd).Add(dunningSpan(h.policy)+24*time.Hour))
		}
	}
	if len(covering) > 0 {
		e := merged(covering[0], append(covering[1:], ended...))
		if now.Before(graceEnd) {
			// A renewal paid by a retry whose webhook was lost: until
			// renewal asks (at the next dunning step) the term in dunning
			// keeps its features, within the grace it had anyway.
			e.widen(merged(last, ended))
		}
		return e, true
	}
	if now.Before(graceEnd) {
		// The terms that ended during the outage too: the system may not
		// have learnt yet of the later ones' payment.
		e := merged(last, ended)
		// And the term the system still runs, dunning for its renewal, when
		// that renewal was paid with its webhook lost and its own term has
		// ended too (a catch-up after a long outage): dunning keeps the
		// running term's features. (The model first judged by the paid
		// renewal's alone: an upgrade of the running term looked unpaid.)
		if s := h.viewSub(m.id); s != nil {
			for _, inv := range h.paidInvoices(m.id) {
				if inv.bought.base && inv != last && inv.bought.termStart.Equal(s.TermStart) {
					e.widen(h.termEntitlement(m.id, inv))
				}
			}
		}
		e.inGrace, e.graceEnd = true, graceEnd
		return e, true
	}
	return entitlement{}, false
}

// widen makes e cover what o covers too (both are paid, or in grace).
func (e *entitlement) widen(o entitlement) {
	if planRank[o.plan] > planRank[e.plan] {
		e.plan = o.plan
	}
	e.seats, e.storageGB, e.computeMinutes = max(e.seats, o.seats), max(e.storageGB, o.storageGB), max(e.computeMinutes, o.computeMinutes)
	if o.termStart.After(e.termStart) {
		e.termStart, e.termEnd = o.termStart, o.termEnd
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// grantedOnlyPaid (rule 9): what GitLab grants a namespace (plan, seats,
// storage, compute minutes), or the license licensing serves an instance,
// and an active or dunning status, are backed by
// a paid term covering now, or by the last paid term within the documented
// grace (dunning retries and grace days, subscription.Policy). Checked when
// no message is held back on the bus.
func grantedOnlyPaid(h *harness) []string {
	if !h.bus.quiet() {
		return nil
	}
	var out []string
	for _, m := range h.subs {
		s := h.viewSub(m.id)
		gr := h.servedGrant(m)
		if m.inst == nil && h.onTrial(m.ns) {
			gr = grant{} // the trial's, judged by trial_bounded
		}
		running := s != nil && (s.Status == subscription.Active || s.Status == subscription.PastDue || s.Status == subscription.Grace)
		if !gr.anythingGranted && !running {
			continue
		}
		e, ok := h.paidNow(m)
		if !ok {
			status := "none"
			if s != nil {
				status = string(s.Status)
			}
			state := ""
			if s != nil {
				state = fmt.Sprintf(" (term %s..%s, renewal pending for %s on %q, next review %v)", s.TermStart.Format(time.DateOnly), s.TermEnd.Format(time.DateOnly),
					s.RenewalPendingFor.Format(time.DateOnly), s.RenewalInvoiceID, s.NextReviewAt)
			}
			out = append(out, fmt.Sprintf("%s: GitLab grants %s/%d seats/%d GB/%d min and the subscription is %s%s at %s, but no paid term covers it and no grace applies",
				m.id, gr.plan, gr.seats, gr.storageGB, gr.computeMinutes, status, state, h.now().Format(time.RFC3339)))
			continue
		}
		var over []string
		if planRank[gr.plan] > planRank[e.plan] {
			over = append(over, fmt.Sprintf("plan %s, paid %s", gr.plan, e.plan))
		}
		if gr.seats > e.seats {
			over = append(over, fmt.Sprintf("%d seats, paid %d", gr.seats, e.seats))
		}
		if gr.storageGB > e.storageGB {
			over = append(over, fmt.Sprintf("%d GB storage, paid %d", gr.storageGB, e.storageGB))
		}
		if gr.computeMinutes > e.computeMinutes {
			over = append(over, fmt.Sprintf("%d compute minutes, paid %d", gr.computeMinutes, e.computeMinutes))
		}
		if len(over) > 0 {
			out = append(out, fmt.Sprintf("%s: GitLab grants more than the term from %s was paid for: %s", m.id, e.termStart.Format(time.DateOnly), strings.Join(over, "; ")))
		}
	}
	return out
}

// checkChargeAllowed runs at every payment attempt (rule 11): no renewal
// payment once the customer turned auto-renew off, no charge at all once
// the subscription ended.
func (h *harness) checkChargeAllowed(inv *invoice) {
	s, m := h.sub(inv.sub), h.modelSub(inv.sub)
	if s != nil && (s.Status == subscription.Canceled || s.Status == subscription.Expired) {
		h.violate(invNoChargeAfterEnd, "%s: payment attempt on %s (%s, %d cents) after the subscription ended (%s)", inv.sub, inv.id, inv.bill.Key, inv.bill.AmountCents, s.Status)
	}
	if inv.kind == kindRenewal && m != nil && !m.autoRenew {
		h.violate(invNoChargeAfterEnd, "%s: renewal payment attempt on %s (%s, %d cents) after auto-renew was turned off", inv.sub, inv.id, inv.bill.Key, inv.bill.AmountCents)
	}
}

// noChargeAfterEnd (rule 11): nothing is charged after auto-renew was
// turned off or after the subscription ended (found at charge time by
// checkChargeAllowed).
func noChargeAfterEnd(h *harness) []string { return h.pending[invNoChargeAfterEnd] }

// chargeEqualsPrice (rule 10): every amount charged is the catalog price
// of what it bought (catalog, proration), in usd, and a key is never
// reused for other parameters.
func chargeEqualsPrice(h *harness) []string {
	out := append([]string(nil), h.pending[invChargeEqualsPrice]...)
	for _, inv := range h.pay.invoices {
		a := inv.bill.AmountCents
		if a <= 0 || inv.bill.Currency != "usd" || a < inv.priceMin || a > inv.priceMax {
			out = append(out, fmt.Sprintf("%s: %s charged %d %s for %q; the catalog price of %s is %d..%d",
				inv.sub, inv.bill.Key, a, inv.bill.Currency, inv.bill.Description, inv.priceWhy, inv.priceMin, inv.priceMax))
		}
	}
	return out
}

// noSeatBilledTwice: the seats invoiced for one term (purchase or renewal,
// added seats, true-ups) never exceed what the customer bought or used,
// nor what the subscription holds.
func noSeatBilledTwice(h *harness) []string {
	var out []string
	for _, m := range h.subs {
		type term struct {
			base, added, trueups int
			lastTrueUp           time.Time
		}
		terms := map[time.Time]*term{}
		for _, inv := range h.pay.invoices {
			if inv.sub != m.id {
				continue
			}
			t := terms[inv.bought.termStart]
			if t == nil {
				t = &term{}
				terms[inv.bought.termStart] = t
			}
			switch {
			case inv.bought.base:
				t.base = max(t.base, inv.bought.seats)
			case inv.kind == kindTrueUp && inv.takenBack:
				// Refunded in whole or lost: its seats are taken back, not billed.
			case inv.kind == kindTrueUp:
				t.trueups += inv.bought.seats // added when invoiced, paid or not
				t.lastTrueUp = maxTime(t.lastTrueUp, inv.createdAt)
			case inv.paid && !inv.takenBack:
				// Added seats are bought only when paid (granted on
				// invoice.paid); a declined, voided or refunded addition
				// billed nothing. (The model first counted every addition
				// charged, paid or not.)
				t.added += inv.bought.seats
			}
		}
		s := h.viewSub(m.id)
		// Seats whose charge is sent and unanswered count as held, as
		// TrueUpSeats counts them: they are granted when the provider's
		// answer comes (or when renewal asks for it a day later).
		pending := 0
		if s != nil {
			for _, ln := range s.Ledger {
				if ln.Kind == ledger.Seats && !ln.Granted && ln.Buys.TermStart.Equal(s.TermStart) &&
					(ln.Outcome == ledger.Open || ln.Outcome == ledger.Unknown) {
					pending += ln.Buys.Seats
				}
			}
		}
		for start, t := range terms {
			used := 0
			for d, n := range m.reports {
				if !d.Before(start) && (s == nil || !start.Equal(s.TermStart) || d.Before(s.TermEnd)) {
					used = max(used, n)
				}
			}
			billed := t.base + t.added + t.trueups
			// True-ups bill only seats used beyond those held: the base and
			// the seats added before the last true-up. (The model first
			// bounded every seat billed by max(bought, used), which forbade
			// buying seats after a true-up.)
			addedBefore := 0
			for _, inv := range h.pay.invoices {
				if inv.sub == m.id && inv.kind == kindChange && inv.paid && !inv.takenBack && inv.bought.termStart.Equal(start) && inv.createdAt.Before(t.lastTrueUp) {
					addedBefore += inv.bought.seats
				}
			}
			if allowed := max(0, used-t.base-addedBefore); t.trueups > allowed {
				out = append(out, fmt.Sprintf("%s: term from %s trued up %d seats (base %d, added before %d, most used %d): at most %d were used beyond those bought",
					m.id, start.Format(time.DateOnly), t.trueups, t.base, addedBefore, used, allowed))
			}
			// While the subscription runs: once it ended it holds nothing,
			// and a charge paid after that is kept "paid, not granted" for
			// an operator to refund (ApplyChargeOutcome's documented policy).
			running := s != nil && s.Status != subscription.Canceled && s.Status != subscription.Expired
			if running && start.Equal(s.TermStart) && billed > s.Order.Seats+pending && t.base > 0 {
				out = append(out, fmt.Sprintf("%s: term from %s billed %d seats but the subscription holds %d (and %d being charged)", m.id, start.Format(time.DateOnly), billed, s.Order.Seats, pending))
			}
		}
	}
	return out
}

// answerWait is how long a paid charge may wait for its outcome to be in
// the ledger: Stripe's webhook retries, then renewal asks the provider at
// its next step (a day after a mid-term charge; at the next retry, grace or
// term end for a renewal, at most a week later), with a day for the tick.
const answerWait = 8 * 24 * time.Hour

// chargeRecorded (rule 10): every charge the provider made has a line in
// the subscription's billing ledger with its invoice id (judged once, at
// the first check after the charge, when the delivery that made it is
// done), and a paid one is recorded paid (or what became of it after:
// refunded, disputed) within answerWait of its payment, counted from the
// end of a scheduler outage.
func chargeRecorded(h *harness) []string {
	if !h.bus.quiet() {
		return nil
	}
	var out []string
	for _, m := range h.subs {
		s := h.viewSub(m.id)
		for _, inv := range h.pay.invoices {
			if inv.sub != m.id || len(inv.attempts) == 0 {
				continue
			}
			var ln *ledger.Line
			if s != nil {
				ln = s.Ledger.ByInvoice(inv.id)
			}
			if inv.recorded == recordedUnknown {
				inv.recorded = recordedYes
				if ln == nil {
					inv.recorded = recordedNo
					inv.unrecorded = fmt.Sprintf("%s: charge %s (%s, %d cents, %q) has no ledger line with its invoice id",
						m.id, inv.id, inv.bill.Key, inv.bill.AmountCents, inv.bill.Description)
				}
			}
			if inv.recorded == recordedNo {
				out = append(out, inv.unrecorded)
				continue
			}
			if !inv.paid || ln == nil || h.now().Before(maxTime(inv.paidAt, h.outageEnd).Add(answerWait)) {
				continue
			}
			switch ln.Outcome {
			case ledger.Quoted, ledger.Open, ledger.Unknown, ledger.Failed, ledger.Void, ledger.Uncollectible:
				out = append(out, fmt.Sprintf("%s: charge %s (%s, %d cents) was paid on %s, but its ledger line is still %s",
					m.id, inv.id, inv.bill.Key, inv.bill.AmountCents, inv.paidAt.Format(time.RFC3339), ln.Outcome))
			}
		}
	}
	return out
}

// converges (rule 11): once the clock is past a term's end (or the
// renewal's first charge, if later) plus the dunning schedule (and Stripe's
// webhook retries), with the scheduler running, every subscription is paid and renewed or suspended, canceled
// or expired.
func converges(h *harness) []string {
	if !h.bus.quiet() {
		return nil
	}
	var out []string
	for _, m := range h.subs {
		s := h.viewSub(m.id)
		if s == nil {
			continue
		}
		switch s.Status {
		case subscription.Suspended, subscription.Canceled, subscription.Expired:
			continue
		case subscription.Active:
			if h.now().Before(s.TermEnd) {
				continue
			}
		}
		// Dunning runs from the renewal's first charge, which a catch-up
		// after an outage may make long after the outage ended (one term
		// at a time, each paid before the next is charged).
		start := maxTime(s.TermEnd, h.outageEnd)
		if r := h.pay.byKey[idempotency.Renewal(m.id, s.TermEnd)]; r != nil && len(r.attempts) > 0 {
			start = maxTime(start, r.attempts[0])
		}
		horizon := start.Add(dunningSpan(h.policy) + 24*time.Hour + stripeRetryWindow)
		if !h.now().Before(horizon) {
			out = append(out, fmt.Sprintf("%s: still %s at %s; its term ended %s (renewal invoice %q, dunning %+v)",
				m.id, s.Status, h.now().Format(time.RFC3339), s.TermEnd.Format(time.DateOnly), s.RenewalInvoiceID, s.Dunning))
		}
	}
	return out
}

// paidNotRevoked (rule 9): a term the provider was paid for is not taken
// away: while a paid term covers now, the subscription is not suspended,
// canceled or expired, and GitLab does not hold the free plan for it nor
// does licensing serve its instance a suspended or revoked license.
func paidNotRevoked(h *harness) []string {
	if !h.bus.quiet() {
		return nil
	}
	var out []string
	for _, m := range h.subs {
		e, ok := h.paidNow(m)
		if !ok || e.inGrace {
			continue
		}
		s := h.viewSub(m.id)
		gr := h.servedGrant(m)
		if s == nil || h.currentTermTakenBack(m.id, s) {
			continue
		}
		if s.Status == subscription.Suspended || s.Status == subscription.Canceled || s.Status == subscription.Expired || (gr.provisionedAtAll && !gr.anythingGranted) {
			out = append(out, fmt.Sprintf("%s: the term %s..%s was paid, but the subscription is %s and GitLab holds %s/%d seats",
				m.id, e.termStart.Format(time.DateOnly), e.termEnd.Format(time.DateOnly), s.Status, gr.plan, gr.seats))
		}
	}
	return out
}

// currentTermTakenBack reports whether the charge that paid the term the
// subscription runs now (a renewal paid early runs from its payment) was
// refunded in whole or lost in a dispute: by the documented policy that
// cancels the subscription, the rest of an earlier paid term included.
func (h *harness) currentTermTakenBack(id string, s *subscription.Subscription) bool {
	for _, inv := range h.pay.invoices {
		if inv.sub == id && inv.bought.base && inv.takeBackKnown && inv.bought.termStart.Equal(s.TermStart) {
			return true
		}
	}
	return false
}
