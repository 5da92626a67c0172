// Package quote prices a purchase from the catalog before anything is
// charged, and checks what a completed checkout paid against it. Money is
// integer cents with its currency.
package quote

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"fulfillment/shared/domain/catalog"
)

// Currency is the currency the catalog's prices are in.
const Currency = "usd"

// TermsMonths are the terms that can be bought: whole years, so every line
// of a quote is an exact number of cents.
var TermsMonths = []int{12, 24, 36}

// Line kinds.
const (
	LineSeats          = "seats"
	LineStorage        = "storage"
	LineComputeMinutes = "compute_minutes"
)

// Line is one priced line: Quantity units at UnitCents each, for the term.
type Line struct {
	Kind        string `firestore:"kind" json:"kind"`
	Description string `firestore:"description" json:"description"`
	Quantity    int64  `firestore:"quantity" json:"quantity"`
	UnitCents   int64  `firestore:"unit_cents" json:"unit_cents"`
	AmountCents int64  `firestore:"amount_cents" json:"amount_cents"`
}

// InvalidError is a purchase the catalog refuses: the caller's mistake.
type InvalidError struct{ Reason string }

func (e *InvalidError) Error() string { return e.Reason }

// IsInvalid reports whether err is an InvalidError.
func IsInvalid(err error) bool {
	var ie *InvalidError
	return errors.As(err, &ie)
}

func invalid(format string, a ...any) error { return &InvalidError{Reason: fmt.Sprintf(format, a...)} }

// Price validates order against the catalog and prices each line for the
// term. The total is the sum of the lines, equal to the plan's term price.
func Price(o catalog.Order) ([]Line, int64, error) {
	plan, err := catalog.LookupPlan(o.PlanCode)
	if err != nil {
		return nil, 0, invalid("%v", err)
	}
	if o.Seats < 1 || o.Seats > catalog.MaxSeats {
		return nil, 0, invalid("seats %d outside 1..%d", o.Seats, catalog.MaxSeats)
	}
	if err := catalog.CheckLimits(o); err != nil {
		return nil, 0, invalid("%v", err)
	}
	termOK := false
	for _, m := range TermsMonths {
		termOK = termOK || o.TermMonths == m
	}
	if !termOK {
		return nil, 0, invalid("term of %d months: want one of %v", o.TermMonths, TermsMonths)
	}
	switch o.Deployment {
	case catalog.DeploymentSaaS:
		if o.NamespaceID == "" || o.InstanceID != "" {
			return nil, 0, invalid("a SaaS purchase names namespace_id (and no instance_id)")
		}
	case catalog.DeploymentSelfManaged:
		if o.InstanceID == "" || o.NamespaceID != "" {
			return nil, 0, invalid("a self-managed purchase names instance_id (and no namespace_id)")
		}
	default:
		return nil, 0, invalid("deployment %q: want %s or %s", o.Deployment, catalog.DeploymentSaaS, catalog.DeploymentSelfManaged)
	}
	years := int64(o.TermMonths / 12)
	lines := []Line{{
		Kind: LineSeats, Description: fmt.Sprintf("%s, %d months, per seat", title(plan.Code), o.TermMonths),
		Quantity: int64(o.Seats), UnitCents: plan.SeatCentsPerYear * years,
	}}
	if o.StorageGB > 0 {
		lines = append(lines, Line{
			Kind: LineStorage, Description: fmt.Sprintf("Storage, 10 GB packs, %d months", o.TermMonths),
			Quantity: int64((o.StorageGB + 9) / 10), UnitCents: plan.StorageCentsPer10GB * years,
		})
	}
	if o.ComputeMinutes > 0 {
		lines = append(lines, Line{
			Kind: LineComputeMinutes, Description: fmt.Sprintf("Compute minutes, 1,000-minute packs, %d months", o.TermMonths),
			Quantity: int64((o.ComputeMinutes + 999) / 1000), UnitCents: plan.ComputeCentsPer1000m * years,
		})
	}
	var total int64
	for i := range lines {
		lines[i].AmountCents = lines[i].Quantity * lines[i].UnitCents
		total += lines[i].AmountCents
	}
	if want := plan.TermPriceCents(o); total != want {
		// The lines must add up to what renewals charge; a catalog change
		// that breaks this is a bug, not the caller's mistake.
		return nil, 0, fmt.Errorf("quote.Price: lines add up to %d cents, the plan's term price is %d", total, want)
	}
	return lines, total, nil
}

func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// Refusal reasons of a completed checkout (Check, and payment-result).
const (
	ReasonAmountMismatch   = "amount_mismatch"
	ReasonCurrencyMismatch = "currency_mismatch"
	ReasonExpired          = "quote_expired"
	ReasonUnknownQuote     = "unknown_quote"
	ReasonForeignSession   = "session_not_ours"
	ReasonNoQuote          = "no_quote"
	// ReasonUnquotedDiscount is a discount on a quote that allowed none:
	// a promotion code the quote did not ask for.
	ReasonUnquotedDiscount = "discount_not_quoted"
)

// Paid is what a completed checkout reports it collected.
type Paid struct {
	SessionID     string
	AmountCents   int64 // amount_total: after discounts, with tax
	DiscountCents int64
	TaxCents      int64
	Currency      string
	At            time.Time
}

// Quoted is what was quoted, as Check needs it.
type Quoted struct {
	SessionID  string
	TotalCents int64
	Currency   string
	ExpiresAt  time.Time
	// Tax says Stripe Tax was asked for: tax is then added on top.
	Tax bool
	// Discounts says the quote let a promotion code apply (one it named,
	// or any the buyer enters at Stripe); the amount is Stripe's to report.
	Discounts bool
}

// Check says why a payment does not settle a quote ("" when it does):
// the session must be the one created for the quote, before its expiry, in
// its currency, for its total less the discount Stripe applied (a promotion
// code the quote allowed), plus tax when Stripe Tax is on.
func Check(q Quoted, p Paid) (reason string, expected int64) {
	expected = q.TotalCents - p.DiscountCents
	if q.Tax {
		expected += p.TaxCents
	}
	switch {
	case q.SessionID == "" || p.SessionID != q.SessionID:
		return ReasonForeignSession, expected
	case !q.ExpiresAt.IsZero() && p.At.After(q.ExpiresAt):
		return ReasonExpired, expected
	case !strings.EqualFold(p.Currency, q.Currency):
		return ReasonCurrencyMismatch, expected
	case p.DiscountCents != 0 && !q.Discounts:
		return ReasonUnquotedDiscount, q.TotalCents
	case p.DiscountCents < 0 || p.DiscountCents > q.TotalCents || (!q.Tax && p.TaxCents != 0) || p.AmountCents != expected:
		return ReasonAmountMismatch, expected
	}
	return "", expected
}
