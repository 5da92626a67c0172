// Package ledger is a subscription's billing ledger: every charge we ask the
// payment provider for, quoted and stored before the call (what it buys,
// amount, currency, idempotency key), its outcome as the provider reports
// it, and whether what it bought was granted. It is pure: the subscription
// carries its ledger, and the functions that charge and the one that reads
// the provider's answers change it inside the subscription's transaction.
//
// Policy (docs/architecture.md, "Money"): a line's purchase is granted when
// the provider says it is paid; a full refund or a lost dispute takes back
// what it bought; a partial refund keeps the grant; an opened dispute keeps
// it and alerts the team until the dispute closes.
package ledger

import (
	"errors"
	"fmt"
	"time"
)

// Kind says what a charge is for.
type Kind string

// Kinds of charge.
const (
	Purchase Kind = "purchase" // the checkout that started the subscription
	Renewal  Kind = "renewal"  // the next term
	Seats    Kind = "seats"    // seats added mid-term, prorated
	Upgrade  Kind = "upgrade"  // a higher plan mid-term, prorated difference
	Pack     Kind = "pack"     // a storage or compute-minute pack, prorated
	TrueUp   Kind = "true-up"  // seats used beyond those bought, billed quarterly
)

// Outcome is what the provider says became of a charge.
type Outcome string

// Outcomes, from quote to the charge's last word.
const (
	Quoted            Outcome = "quoted"  // priced and stored; not yet sent
	Open              Outcome = "open"    // sent; the provider's answer is awaited
	Unknown           Outcome = "unknown" // the pay call got no answer: ask before anything else
	Paid              Outcome = "paid"
	Failed            Outcome = "failed" // declined or failed; may still be paid by a retry
	Void              Outcome = "void"
	Uncollectible     Outcome = "uncollectible"
	PartiallyRefunded Outcome = "partially_refunded"
	Refunded          Outcome = "refunded"
	Disputed          Outcome = "disputed"
	DisputeWon        Outcome = "dispute_won"
	DisputeLost       Outcome = "dispute_lost"
)

// Grant is what a charge buys.
type Grant struct {
	PlanCode       string    `firestore:"plan_code" json:"plan_code,omitempty"`
	Seats          int       `firestore:"seats" json:"seats,omitempty"`
	PackKind       string    `firestore:"pack_kind" json:"pack_kind,omitempty"`
	PackAmount     int       `firestore:"pack_amount" json:"pack_amount,omitempty"`
	TermStart      time.Time `firestore:"term_start" json:"term_start"`
	TermEnd        time.Time `firestore:"term_end" json:"term_end"`
	PurchaseID     string    `firestore:"purchase_id" json:"purchase_id,omitempty"`
	PreviousPlan   string    `firestore:"previous_plan" json:"previous_plan,omitempty"`
	StorageGB      int       `firestore:"storage_gb" json:"storage_gb,omitempty"`
	ComputeMinutes int       `firestore:"compute_minutes" json:"compute_minutes,omitempty"`
}

// Line is one charge.
type Line struct {
	// Key is the charge's idempotency key: one line per key.
	Key         string    `firestore:"key" json:"key"`
	Kind        Kind      `firestore:"kind" json:"kind"`
	Description string    `firestore:"description" json:"description"`
	Buys        Grant     `firestore:"buys" json:"buys"`
	AmountCents int64     `firestore:"amount_cents" json:"amount_cents"`
	Currency    string    `firestore:"currency" json:"currency"`
	QuotedAt    time.Time `firestore:"quoted_at" json:"quoted_at"`
	InvoiceID   string    `firestore:"invoice_id" json:"invoice_id,omitempty"`
	Outcome     Outcome   `firestore:"outcome" json:"outcome"`
	// OutcomeAt is the provider's time of the outcome (our time for Quoted
	// and Open); an older provider event never overwrites a newer one.
	OutcomeAt     time.Time `firestore:"outcome_at" json:"outcome_at"`
	PaidCents     int64     `firestore:"paid_cents" json:"paid_cents,omitempty"`
	RefundedCents int64     `firestore:"refunded_cents" json:"refunded_cents,omitempty"`
	Granted       bool      `firestore:"granted" json:"granted"`
	GrantedAt     time.Time `firestore:"granted_at" json:"granted_at,omitzero"`
	Revoked       bool      `firestore:"revoked" json:"revoked,omitempty"`
	// AskedAt is when we last asked the provider about a line whose
	// answer we no longer expect by webhook (see subscription's settle step).
	AskedAt time.Time `firestore:"asked_at" json:"asked_at,omitzero"`
	// TaxCents is the tax Stripe Tax added on top (a checkout with
	// automatic tax): kept apart, never part of AmountCents or PaidCents.
	TaxCents int64 `firestore:"tax_cents" json:"tax_cents,omitempty"`
}

// Ledger is a subscription's lines, in the order they were quoted.
type Ledger []Line

// ErrQuoteMismatch says a key was quoted again with other terms: the stored
// quote is what gets charged, never a new price under an old key.
var ErrQuoteMismatch = errors.New("ledger: key already quoted with other terms")

// ErrUnknownLine says no line has the key or invoice.
var ErrUnknownLine = errors.New("ledger: no such line")

// Find returns the line with key, or nil.
func (l Ledger) Find(key string) *Line {
	for i := range l {
		if l[i].Key == key {
			return &l[i]
		}
	}
	return nil
}

// ByInvoice returns the line charged on invoiceID, or nil.
func (l Ledger) ByInvoice(invoiceID string) *Line {
	if invoiceID == "" {
		return nil
	}
	for i := range l {
		if l[i].InvoiceID == invoiceID {
			return &l[i]
		}
	}
	return nil
}

// Quote stores a priced charge before it is made. Quoting a key again
// returns the stored line when its terms are the same (a retried delivery
// charges what was stored) and ErrQuoteMismatch when they differ.
func (l *Ledger) Quote(q Line) (*Line, error) {
	switch {
	case q.Key == "":
		return nil, errors.New("ledger: a quote needs a key")
	case q.AmountCents < 0:
		return nil, fmt.Errorf("ledger: quote %s of %d cents", q.Key, q.AmountCents)
	case q.Currency == "":
		return nil, fmt.Errorf("ledger: quote %s has no currency", q.Key)
	}
	if cur := l.Find(q.Key); cur != nil {
		if cur.AmountCents != q.AmountCents || cur.Currency != q.Currency || cur.Kind != q.Kind {
			return cur, fmt.Errorf("%w: %s is %d %s %s, asked %d %s %s", ErrQuoteMismatch, q.Key,
				cur.AmountCents, cur.Currency, cur.Kind, q.AmountCents, q.Currency, q.Kind)
		}
		return cur, nil
	}
	q.Outcome, q.OutcomeAt = Quoted, q.QuotedAt
	q.Granted, q.GrantedAt, q.Revoked, q.InvoiceID = false, time.Time{}, false, ""
	*l = append(*l, q)
	return &(*l)[len(*l)-1], nil
}

// rank orders outcomes so that a late or repeated provider event never
// moves a line back: a paid invoice stays paid whatever failure arrives
// after it; refunds and disputes come after payment.
var rank = map[Outcome]int{
	Quoted: 0, Open: 1, Unknown: 1, Failed: 2, Void: 3, Uncollectible: 3,
	Paid: 4, Disputed: 5, PartiallyRefunded: 5, DisputeWon: 6, Refunded: 7, DisputeLost: 7,
}

// Record applies an outcome the provider reported at time at. It reports
// whether the line changed: an outcome that ranks below the line's, or a
// repeat of it, is a recorded no-op. A partial refund may repeat with a
// growing amount; a disputed line may still be refunded.
func (ln *Line) Record(o Outcome, at time.Time, cents int64) bool {
	if o == PartiallyRefunded && ln.PaidCents > 0 && cents >= ln.PaidCents {
		o = Refunded
	}
	growing := o == PartiallyRefunded && ln.Outcome == PartiallyRefunded && cents > ln.RefundedCents
	if !growing && (o == ln.Outcome || rank[o] < rank[ln.Outcome]) {
		return false
	}
	switch o {
	case Paid:
		ln.PaidCents = cents
		if cents == 0 {
			ln.PaidCents = ln.AmountCents
		}
	case PartiallyRefunded, Refunded:
		ln.RefundedCents = max(ln.RefundedCents, cents)
		if o == Refunded && ln.RefundedCents == 0 {
			ln.RefundedCents = ln.PaidCents
		}
	}
	ln.Outcome, ln.OutcomeAt = o, at
	return true
}

// Sent records that the charge was made on invoiceID and awaits its answer
// (Unknown when the pay call got none).
func (ln *Line) Sent(invoiceID string, unknown bool, at time.Time) {
	ln.InvoiceID = invoiceID
	o := Open
	if unknown {
		o = Unknown
	}
	if rank[ln.Outcome] <= rank[o] {
		ln.Outcome, ln.OutcomeAt = o, at
	}
}

// IsPaid reports whether what the line bought is paid for: paid, partly
// refunded, disputed but not lost, or a dispute won.
func (ln Line) IsPaid() bool {
	switch ln.Outcome {
	case Paid, PartiallyRefunded, Disputed, DisputeWon:
		return true
	}
	return false
}

// TakesBack reports whether the outcome takes back what the line bought.
func (ln Line) TakesBack() bool { return ln.Outcome == Refunded || ln.Outcome == DisputeLost }

// Uncovered lists the lines granted without being paid (and not revoked):
// what the consistency check reports.
func (l Ledger) Uncovered() []Line {
	var out []Line
	for _, ln := range l {
		if ln.Granted && !ln.Revoked && !ln.IsPaid() {
			out = append(out, ln)
		}
	}
	return out
}

// Totals sums the ledger: quoted, paid and refunded cents per currency.
type Totals struct {
	Billed, Paid, Refunded map[string]int64
}

// Sum totals the ledger.
func (l Ledger) Sum() Totals {
	t := Totals{Billed: map[string]int64{}, Paid: map[string]int64{}, Refunded: map[string]int64{}}
	for _, ln := range l {
		if ln.Outcome != Quoted {
			t.Billed[ln.Currency] += ln.AmountCents
		}
		t.Paid[ln.Currency] += ln.PaidCents
		t.Refunded[ln.Currency] += ln.RefundedCents
	}
	return t
}
