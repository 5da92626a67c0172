package paymentresult

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/quote"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/runtime/failure"
)

// QuotePolicy says which completed checkouts may be provisioned: every
// session the checkout function created must be paid as quoted (amount
// after Stripe's discount, currency, before the quote's expiry). A session
// without a quote id was not created by us: it is refused when Require is
// set, unless it came from one of the allowed payment links.
type QuotePolicy struct {
	Require      bool
	PaymentLinks []string
}

// checkedAgainstQuote runs next only for a checkout whose payment matches
// its quote; any other is refused: recorded (checkout_refusals) with its
// reason, announced (checkout.quote_mismatch, for alerting), and
// dead-lettered, all without provisioning anything. The verdict on a
// completion of the quote's own session is kept on the quote, for the
// asynchronous payment result that may follow it days later.
func (f *Function) checkedAgainstQuote(next consumer.HandlerFunc) consumer.HandlerFunc {
	return func(ctx context.Context, in event.Event) error {
		var pe catalog.ProviderEvent
		if err := cloudevent.DecodeData(in, &pe); err != nil || pe.Invalid != "" {
			return next(ctx, in) // next dead-letters what it cannot use
		}
		v, err := f.checkQuote(ctx, in.Type(), pe)
		if err != nil {
			return err
		}
		if v.refusal != nil {
			return f.refuse(ctx, in, v)
		}
		if err := next(ctx, in); err != nil {
			return err
		}
		if !v.settles {
			return nil
		}
		// After next, so a redelivery after a crash in between settles it.
		return f.d.Store.SettleQuote(ctx, nil, pe.Checkout.QuoteID, store.QuoteCompleted, "", pe.OccurredAt)
	}
}

// verdict is checkQuote's answer: refusal is nil when the checkout may be
// provisioned; settles says the event is the completion of its quote's own
// session, whose verdict the quote keeps.
type verdict struct {
	refusal *store.CheckoutRefusal
	settles bool
}

// checkQuote judges a checkout event of type typ against its quote.
func (f *Function) checkQuote(ctx context.Context, typ string, pe catalog.ProviderEvent) (verdict, error) {
	d := pe.Checkout
	if d == nil {
		d = &catalog.CheckoutDetails{}
	}
	r := &store.CheckoutRefusal{
		SessionID: pe.CheckoutSessionID, QuoteID: d.QuoteID, ProviderEventID: pe.ProviderEventID,
		PaidCents: pe.AmountCents, Currency: pe.Currency, RecordedAt: pe.OccurredAt,
	}
	if d.QuoteID == "" {
		if !f.d.Quotes.Require || (d.PaymentLinkID != "" && slices.Contains(f.d.Quotes.PaymentLinks, d.PaymentLinkID)) {
			return verdict{}, nil
		}
		r.Reason = quote.ReasonNoQuote
		return verdict{refusal: r}, nil
	}
	q, err := f.d.Store.Quote(ctx, nil, d.QuoteID)
	switch {
	case store.IsNotFound(err):
		r.Reason = quote.ReasonUnknownQuote
		return verdict{refusal: r}, nil
	case err != nil:
		return verdict{}, err
	}
	own := q.SessionID != "" && q.SessionID == pe.CheckoutSessionID
	paid := quote.Paid{
		SessionID: pe.CheckoutSessionID, AmountCents: pe.AmountCents, DiscountCents: d.DiscountCents,
		TaxCents: d.TaxCents, Currency: pe.Currency, At: pe.OccurredAt,
	}
	if own && typ != catalog.CheckoutCompleted {
		// A delayed method's result comes days after the completion, past
		// the quote's expiry: the expiry was the completion's to meet, so
		// the result follows the completion's verdict.
		at, refused, err := f.completionVerdict(ctx, q, pe)
		if err != nil {
			return verdict{}, err
		}
		if refused != "" {
			r.Reason = refused
			return verdict{refusal: r}, nil
		}
		paid.At = at
	}
	r.Reason, r.ExpectedCents = quote.Check(q.Quoted(), paid)
	v := verdict{settles: own && typ == catalog.CheckoutCompleted}
	if r.Reason != "" {
		v.refusal = r
	}
	return v, nil
}

// completionVerdict is how the completion of q's session was judged: when
// it was accepted, or why it was refused. A quote judged before verdicts
// were kept on it shows an accepted completion by its subscription, a
// refused one by its refusal record. With neither, the completion has not been
// judged yet (this result overtook it): an error, so it is retried.
func (f *Function) completionVerdict(ctx context.Context, q store.Quote, pe catalog.ProviderEvent) (acceptedAt time.Time, refused string, err error) {
	switch q.Status {
	case store.QuoteCompleted:
		return q.CompletedAt, "", nil
	case store.QuoteRefused:
		return time.Time{}, q.Refusal, nil
	}
	sub, err := f.d.Store.Subscription(ctx, nil, pe.SubscriptionID)
	switch {
	case err == nil && sub.PurchaseID == pe.CheckoutSessionID:
		return q.CreatedAt, "", nil // accepted, so before its expiry
	case err != nil && !store.IsNotFound(err):
		return time.Time{}, "", err
	}
	// A completion refused then left its refusal record, not a verdict.
	switch r, found, err := f.d.Store.CheckoutRefusalOf(ctx, pe.CheckoutSessionID); {
	case err != nil:
		return time.Time{}, "", err
	case found:
		return time.Time{}, r.Reason, nil
	}
	return time.Time{}, "", fmt.Errorf("paymentresult.completionVerdict: the completion of %s is not judged yet: retry", pe.CheckoutSessionID)
}

// refuse records and announces the refusal once, then dead-letters the
// event for a person (refund or provision by hand).
func (f *Function) refuse(ctx context.Context, in event.Event, v verdict) error {
	r := *v.refusal
	err := f.Processor.Once(ctx, in, consumer.Work{Apply: func(ctx context.Context, tx store.Tx) ([]consumer.Outgoing, error) {
		if v.settles { // reads before writes, as a transaction needs
			if err := f.d.Store.SettleQuote(ctx, tx, r.QuoteID, store.QuoteRefused, r.Reason, r.RecordedAt); err != nil {
				return nil, err
			}
		}
		if err := f.d.Store.SaveCheckoutRefusal(tx, r); err != nil {
			return nil, err
		}
		e, err := cloudevent.New(ctx, cloudevent.DerivedID(in, catalog.CheckoutQuoteMismatch), catalog.SourcePaymentResult,
			catalog.CheckoutQuoteMismatch, r.SessionID, catalog.QuoteMismatch{
				QuoteID: r.QuoteID, CheckoutSessionID: r.SessionID, Reason: r.Reason,
				ExpectedCents: r.ExpectedCents, PaidCents: r.PaidCents, Currency: r.Currency,
			})
		if err != nil {
			return nil, err
		}
		return []consumer.Outgoing{{Topic: catalog.TopicSubscriptionEvents, Event: e}}, nil
	}})
	if err != nil {
		return err
	}
	f.d.Logger.WarnContext(ctx, "checkout refused against its quote", "checkout_session_id", r.SessionID,
		"quote_id", r.QuoteID, "reason", r.Reason, "expected_cents", r.ExpectedCents, "paid_cents", r.PaidCents)
	cause := failure.Permanentf("checkout %s not provisioned: %s (quote %q, expected %d, paid %d %s)",
		r.SessionID, r.Reason, r.QuoteID, r.ExpectedCents, r.PaidCents, r.Currency)
	if err := f.Processor.DeadLetter(ctx, in, cause); err != nil {
		return fmt.Errorf("paymentresult.refuse: %w", err)
	}
	return nil
}
