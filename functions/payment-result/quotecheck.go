package paymentresult

import (
	"context"
	"fmt"
	"slices"

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
// dead-lettered, all without provisioning anything.
func (f *Function) checkedAgainstQuote(next consumer.HandlerFunc) consumer.HandlerFunc {
	return func(ctx context.Context, in event.Event) error {
		var pe catalog.ProviderEvent
		if err := cloudevent.DecodeData(in, &pe); err != nil || pe.Invalid != "" {
			return next(ctx, in) // next dead-letters what it cannot use
		}
		refusal, err := f.checkQuote(ctx, pe)
		if err != nil {
			return err
		}
		if refusal == nil {
			return next(ctx, in)
		}
		return f.refuse(ctx, in, *refusal)
	}
}

// checkQuote returns the refusal of a checkout, nil when it may be provisioned.
func (f *Function) checkQuote(ctx context.Context, pe catalog.ProviderEvent) (*store.CheckoutRefusal, error) {
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
			return nil, nil
		}
		r.Reason = quote.ReasonNoQuote
		return r, nil
	}
	q, err := f.d.Store.Quote(ctx, nil, d.QuoteID)
	switch {
	case store.IsNotFound(err):
		r.Reason = quote.ReasonUnknownQuote
		return r, nil
	case err != nil:
		return nil, err
	}
	r.Reason, r.ExpectedCents = quote.Check(q.Quoted(), quote.Paid{
		SessionID: pe.CheckoutSessionID, AmountCents: pe.AmountCents, DiscountCents: d.DiscountCents,
		TaxCents: d.TaxCents, Currency: pe.Currency, At: pe.OccurredAt,
	})
	if r.Reason == "" {
		return nil, nil
	}
	return r, nil
}

// refuse records and announces the refusal once, then dead-letters the
// event for a person (refund or provision by hand).
func (f *Function) refuse(ctx context.Context, in event.Event, r store.CheckoutRefusal) error {
	err := f.Processor.Once(ctx, in, consumer.Work{Apply: func(ctx context.Context, tx store.Tx) ([]consumer.Outgoing, error) {
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
