package store

import (
	"context"
	"fmt"
	"time"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/quote"
)

// The checkout function's collections (functions/checkout): quotes, the
// completed checkouts refused against them (written by payment-result),
// and trials.
const (
	Quotes           = "quotes"
	CheckoutRefusals = "checkout_refusals"
	Trials           = "trials"
)

// Quote statuses.
const (
	QuoteOpen      = "open"      // priced and stored; the session may not exist yet
	QuoteSession   = "session"   // its Stripe Checkout Session is created
	QuoteRefused   = "refused"   // a completion of its session did not match it
	QuoteCompleted = "completed" // a completion of its session matched it
)

// Buyer is who buys: personal data, never logged.
type Buyer struct {
	Name    string `firestore:"name" json:"name"`
	Email   string `firestore:"email" json:"email"`
	Company string `firestore:"company" json:"company,omitempty"`
}

// Quote is a priced purchase: what it buys, each line's price, the total
// and currency, until when it holds, and the Stripe session created for it.
// Its id is derived from the caller's idempotency key, so a repeated
// request finds it.
type Quote struct {
	ID string `firestore:"id" json:"id"`
	// Fingerprint is a hash of the request: the same key with another
	// request is refused.
	Fingerprint string        `firestore:"fingerprint" json:"-"`
	Caller      string        `firestore:"caller" json:"caller"`
	Order       catalog.Order `firestore:"order" json:"order"`
	Buyer       Buyer         `firestore:"buyer" json:"-"`
	Lines       []quote.Line  `firestore:"lines" json:"lines"`
	Currency    string        `firestore:"currency" json:"currency"`
	TotalCents  int64         `firestore:"total_cents" json:"total_cents"`
	Tax         bool          `firestore:"tax" json:"tax"`
	// AllowPromotionCodes lets the buyer enter any code at Stripe;
	// PromotionCode (and its Stripe id) is the one code the buyer gave us,
	// applied to the session. At most one of the two.
	AllowPromotionCodes bool      `firestore:"allow_promotion_codes" json:"allow_promotion_codes"`
	PromotionCode       string    `firestore:"promotion_code" json:"promotion_code,omitempty"`
	PromotionCodeID     string    `firestore:"promotion_code_id" json:"promotion_code_id,omitempty"`
	CreatedAt           time.Time `firestore:"created_at" json:"created_at"`
	ExpiresAt           time.Time `firestore:"expires_at" json:"expires_at"`
	Status              string    `firestore:"status" json:"status"`
	CustomerID          string    `firestore:"customer_id" json:"customer_id,omitempty"`
	SessionID           string    `firestore:"session_id" json:"session_id,omitempty"`
	SessionURL          string    `firestore:"session_url" json:"session_url,omitempty"`
	SuccessURL          string    `firestore:"success_url" json:"success_url"`
	CancelURL           string    `firestore:"cancel_url" json:"cancel_url"`
	// CompletedAt is when its session's completion was accepted (status
	// completed) or refused (Refusal says why): the verdict a later
	// asynchronous payment result of the session follows.
	CompletedAt time.Time `firestore:"completed_at" json:"completed_at,omitempty"`
	Refusal     string    `firestore:"refusal" json:"refusal,omitempty"`
}

// Quoted is what quote.Check needs of q.
func (q Quote) Quoted() quote.Quoted {
	return quote.Quoted{SessionID: q.SessionID, TotalCents: q.TotalCents, Currency: q.Currency, ExpiresAt: q.ExpiresAt, Tax: q.Tax,
		Discounts: q.AllowPromotionCodes || q.PromotionCodeID != ""}
}

// CreateQuote stores q unless a quote with its id exists, which is
// returned instead with created false.
func (s *Store) CreateQuote(ctx context.Context, q Quote) (stored Quote, created bool, err error) {
	err = s.DB.Create(ctx, Quotes, q.ID, q)
	if err == nil {
		return q, true, nil
	}
	if !docstore.IsAlreadyExists(err) {
		return Quote{}, false, fmt.Errorf("store.CreateQuote: %w", err)
	}
	stored, err = s.Quote(ctx, nil, q.ID)
	return stored, false, err
}

// Quote reads a quote, inside tx when tx is not nil.
func (s *Store) Quote(ctx context.Context, tx Tx, id string) (Quote, error) {
	var q Quote
	if err := s.Get(ctx, tx, Quotes, id, &q); err != nil {
		return Quote{}, fmt.Errorf("store.Quote %s: %w", id, err)
	}
	return q, nil
}

// SaveQuote replaces a quote.
func (s *Store) SaveQuote(ctx context.Context, q Quote) error {
	if err := s.DB.Set(ctx, Quotes, q.ID, q); err != nil {
		return fmt.Errorf("store.SaveQuote: %w", err)
	}
	return nil
}

// SettleQuote records the verdict on the completion of quote id's own
// session (status QuoteCompleted, or QuoteRefused with its reason), inside
// tx, or in a transaction of its own when tx is nil. The first verdict
// stays: Stripe completes a session once, and a redelivery must not move it.
// An absent quote is no error: there is nothing to settle.
func (s *Store) SettleQuote(ctx context.Context, tx Tx, id, status, reason string, at time.Time) error {
	settle := func(ctx context.Context, tx Tx) error {
		var q Quote
		switch err := tx.Get(Quotes, id, &q); {
		case docstore.IsNotFound(err):
			return nil
		case err != nil:
			return err
		}
		if q.Status == QuoteCompleted || q.Status == QuoteRefused {
			return nil
		}
		q.Status, q.Refusal, q.CompletedAt = status, reason, at
		return tx.Set(Quotes, id, q)
	}
	var err error
	if tx != nil {
		err = settle(ctx, tx)
	} else {
		err = s.RunTx(ctx, settle)
	}
	if err != nil {
		return fmt.Errorf("store.SettleQuote %s: %w", id, err)
	}
	return nil
}

// CheckoutRefusal records a completed checkout that was not provisioned,
// and why (quote.Reason*). Keyed by checkout session id.
type CheckoutRefusal struct {
	SessionID       string    `firestore:"session_id" json:"session_id"`
	QuoteID         string    `firestore:"quote_id" json:"quote_id"`
	ProviderEventID string    `firestore:"provider_event_id" json:"provider_event_id"`
	Reason          string    `firestore:"reason" json:"reason"`
	ExpectedCents   int64     `firestore:"expected_cents" json:"expected_cents"`
	PaidCents       int64     `firestore:"paid_cents" json:"paid_cents"`
	Currency        string    `firestore:"currency" json:"currency"`
	RecordedAt      time.Time `firestore:"recorded_at" json:"recorded_at"`
}

// SaveCheckoutRefusal records a refused completion inside tx.
func (s *Store) SaveCheckoutRefusal(tx Tx, r CheckoutRefusal) error {
	return tx.Set(CheckoutRefusals, r.SessionID, r)
}

// CheckoutRefusalOf reads the refusal of a session; found is false when it
// was not refused.
func (s *Store) CheckoutRefusalOf(ctx context.Context, sessionID string) (r CheckoutRefusal, found bool, err error) {
	err = s.Get(ctx, nil, CheckoutRefusals, sessionID, &r)
	if docstore.IsNotFound(err) {
		return r, false, nil
	}
	return r, err == nil, err
}
