// Package paymentresult owns the subscription state machine: it applies
// provider events (purchases, payments, failures, cancellations) to the
// subscription in Firestore, with a history record per input, and announces
// each change on the subscription-events topic.
package paymentresult

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/ledger"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/runtime/failure"
)

// Name is the function's name in logs, FUNCTION_TARGET and deployments.
const Name = "payment-result"

// Deps are what payment-result needs.
type Deps struct {
	Store           *store.Store
	Publisher       pubsub.Publisher
	DeadLetterTopic string
	// Quotes says which completed checkouts may be provisioned (quotecheck.go).
	Quotes QuotePolicy
	Logger *slog.Logger
	Close  func() error
}

// Function is payment-result.
type Function struct {
	consumer.Base
	d Deps
}

// New returns payment-result.
func New(d Deps) *Function {
	f := &Function{d: d}
	f.Base = consumer.Base{OnClose: d.Close, Processor: &consumer.Processor{
		Name: Name, Journal: d.Store, Publisher: d.Publisher, DeadLetterTopic: d.DeadLetterTopic, Logger: d.Logger,
		Topic: catalog.TopicProviderEvents, Exists: f.awaitedExists,
		Routes: map[string]consumer.HandlerFunc{
			catalog.CheckoutCompleted:           f.checkedAgainstQuote(f.step(purchase)),
			catalog.CheckoutAsyncPaymentSucceed: f.checkedAgainstQuote(f.step(settleInitialPayment(true))),
			catalog.CheckoutAsyncPaymentFailed:  f.checkedAgainstQuote(f.step(settleInitialPayment(false))),
			catalog.InvoicePaid:                 f.step(invoicePaid),
			catalog.InvoicePaymentFailed:        f.step(invoicePaymentFailed),
			catalog.ProviderSubscriptionDeleted: f.step(cancel),
			catalog.InvoiceVoided:               f.step(invoiceClosedUnpaid(ledger.Void)),
			catalog.InvoiceUncollectible:        f.step(invoiceClosedUnpaid(ledger.Uncollectible)),
			catalog.ChargeRefunded:              f.step(chargeRefunded),
			catalog.ChargeDisputeCreated:        f.step(disputeOutcome),
			catalog.ChargeDisputeClosed:         f.step(disputeOutcome),
		},
	}}
	return f
}

// transition applies a provider event to the subscription it names (nil when
// there is none yet) and returns the new state and what changed.
type transition func(sub *subscription.Subscription, pe catalog.ProviderEvent) (*subscription.Subscription, subscription.Change, error)

// step runs a transition exactly once per provider event: the subscription,
// its history record and the announcing events commit together.
func (f *Function) step(apply transition) consumer.HandlerFunc {
	return func(ctx context.Context, in event.Event) error {
		var pe catalog.ProviderEvent
		if err := cloudevent.DecodeData(in, &pe); err != nil {
			return err
		}
		if pe.Invalid != "" {
			return failure.Permanentf("provider event %s is unusable: %s", pe.ProviderEventID, pe.Invalid)
		}
		if err := f.resolve(ctx, &pe); err != nil {
			return err
		}
		err := f.Processor.Once(ctx, in, consumer.Work{
			Reads: []store.Key{{Collection: store.Subscriptions, ID: pe.SubscriptionID}},
			Apply: func(ctx context.Context, tx store.Tx) ([]consumer.Outgoing, error) {
				sub, err := f.d.Store.Subscription(ctx, tx, pe.SubscriptionID)
				if err != nil && !store.IsNotFound(err) {
					return nil, err
				}
				next, change, err := apply(sub, pe)
				if err != nil {
					return nil, err
				}
				if next != nil {
					next.SawProviderEvent(pe.OccurredAt)
				}
				if err := f.d.Store.SaveSubscription(tx, next, change, in.Type(), in.ID(), cloudevent.Key(in)); err != nil {
					return nil, err
				}
				if err := f.index(tx, in.Type(), next, pe); err != nil {
					return nil, err
				}
				return announce(ctx, in, next, change, pe)
			},
		})
		if err != nil {
			return err
		}
		return f.resumeParked(ctx, in.Type(), pe)
	}
}

// announce builds the events that tell the other functions what changed.
func announce(ctx context.Context, in event.Event, sub *subscription.Subscription, change subscription.Change, pe catalog.ProviderEvent) ([]consumer.Outgoing, error) {
	var out []consumer.Outgoing
	if change.Event != "" && !change.NoOp {
		e, err := cloudevent.New(ctx, cloudevent.DerivedID(in, change.Event), catalog.SourcePaymentResult, change.Event, sub.ID, sub.Announcement(change))
		if err != nil {
			return nil, err
		}
		out = append(out, consumer.Outgoing{Topic: catalog.TopicSubscriptionEvents, Event: e})
	}
	if ln := change.Charge; ln != nil && ln.IsPaid() && !change.NoOp && change.Event == "" {
		// A paid charge whose payment changes nothing worth a subscription
		// event (a true-up: its seats came with its invoice) is announced on
		// its own: it is the customer's receipt.
		paid := sub.Announcement(change).Charge
		e, err := cloudevent.New(ctx, cloudevent.DerivedID(in, catalog.ChargePaid), catalog.SourcePaymentResult, catalog.ChargePaid, sub.ID,
			catalog.ChargeNotice{SubscriptionID: sub.ID, Charge: *paid})
		if err != nil {
			return nil, err
		}
		out = append(out, consumer.Outgoing{Topic: catalog.TopicSubscriptionEvents, Event: e})
	}
	if in.Type() == catalog.InvoicePaymentFailed || in.Type() == catalog.CheckoutAsyncPaymentFailed {
		// Every distinct failure counts for alerting, whether or not it moved the state.
		e, err := cloudevent.New(ctx, cloudevent.DerivedID(in, catalog.PaymentFailed), catalog.SourcePaymentResult, catalog.PaymentFailed, sub.ID, catalog.PaymentFailure{
			SubscriptionID: sub.ID, ProviderEventID: pe.ProviderEventID, InvoiceID: pe.InvoiceID,
			AmountCents: pe.AmountCents, Reason: pe.FailureReason, OccurredAt: pe.OccurredAt,
			DunningSince: sub.Dunning.FailedAt, Retries: sub.Dunning.Retries,
		})
		if err != nil {
			return nil, err
		}
		out = append(out, consumer.Outgoing{Topic: catalog.TopicSubscriptionEvents, Event: e})
	}
	return out, nil
}

func purchase(sub *subscription.Subscription, pe catalog.ProviderEvent) (*subscription.Subscription, subscription.Change, error) {
	if sub != nil {
		return sub, subscription.Change{From: sub.Status, To: sub.Status, NoOp: true, Reason: "already purchased"}, nil
	}
	if pe.Order == nil || pe.Customer == nil {
		return nil, subscription.Change{}, failure.Permanentf("checkout %s carries no order", pe.CheckoutSessionID)
	}
	paid := pe.PaymentStatus == "paid" || pe.PaymentStatus == "no_payment_required"
	sub, c, err := subscription.Purchase(pe.SubscriptionID, pe.CheckoutSessionID, *pe.Order, *pe.Customer, paid, pe.OccurredAt)
	if err != nil {
		return nil, c, err
	}
	if pe.Currency != "" {
		sub.Currency = pe.Currency
	}
	if d := pe.Checkout; d != nil && (d.QuoteID != "" || d.PaymentLinkID != "") {
		// Our sessions and the allowed payment links save the card for
		// off-session use; renewals are charged with it.
		sub.SavedPaymentFrom = pe.PaymentIntentID
		if sub.SavedPaymentFrom == "" {
			sub.SavedPaymentFrom = d.SetupIntentID
		}
	}
	var tax int64
	if pe.Checkout != nil {
		tax = pe.Checkout.TaxCents
	}
	sub.RecordPurchase(pe.AmountCents-tax, paid, pe.OccurredAt)
	ln := sub.Ledger.Find(purchaseKey(sub))
	if ln != nil && tax > 0 {
		ln.TaxCents = tax // the ledger keeps tax apart from the price
	}
	return sub, c.WithCharge(ln), nil
}

// settleInitialPayment applies a late checkout payment result. The checkout
// event may not have arrived yet: the async event carries the same session,
// so the subscription is created from it.
func settleInitialPayment(succeeded bool) transition {
	return func(sub *subscription.Subscription, pe catalog.ProviderEvent) (*subscription.Subscription, subscription.Change, error) {
		if sub == nil {
			pending := pe
			pending.PaymentStatus = "unpaid"
			created, _, err := purchase(nil, pending)
			if err != nil {
				return nil, subscription.Change{}, err
			}
			sub = created
		}
		o := ledger.Failed
		if succeeded {
			o = ledger.Paid
		}
		c := sub.SettleInitialPayment(succeeded, pe.OccurredAt)
		return sub, both(c, sub.ApplyChargeOutcome(purchaseKey(sub), "", o, pe.AmountCents, pe.OccurredAt)), nil
	}
}

func invoicePaid(sub *subscription.Subscription, pe catalog.ProviderEvent) (*subscription.Subscription, subscription.Change, error) {
	if sub == nil {
		return nil, subscription.Change{}, unknownSubscription(pe)
	}
	paid := sub.ApplyChargeOutcome(pe.ChargeKey, pe.InvoiceID, ledger.Paid, pe.AmountCents, pe.OccurredAt)
	if pe.TermStart.IsZero() {
		return sub, paid, nil // a mid-term charge: granted by its ledger line
	}
	return sub, both(sub.ApplyInvoicePaid(pe.TermStart, pe.OccurredAt), paid), nil
}

func invoicePaymentFailed(sub *subscription.Subscription, pe catalog.ProviderEvent) (*subscription.Subscription, subscription.Change, error) {
	if sub == nil {
		return nil, subscription.Change{}, unknownSubscription(pe)
	}
	failed := sub.ApplyChargeOutcome(pe.ChargeKey, pe.InvoiceID, ledger.Failed, pe.AmountCents, pe.OccurredAt)
	if pe.TermStart.IsZero() {
		return sub, failed, nil // a mid-term charge: nothing was granted, nothing to take back
	}
	return sub, both(sub.ApplyPaymentFailed(pe.TermStart, pe.OccurredAt, pe.InvoiceID), failed), nil
}

func cancel(sub *subscription.Subscription, pe catalog.ProviderEvent) (*subscription.Subscription, subscription.Change, error) {
	if sub == nil {
		return nil, subscription.Change{}, unknownSubscription(pe)
	}
	return sub, sub.Cancel(pe.OccurredAt, "canceled at the provider"), nil
}

// unknownSubscription is transient: the purchase event may still be on its
// way (provider events arrive out of order, and Stripe may retry a
// purchase's webhook for hours). Past the maximum delivery attempts the
// event is parked until the subscription exists (consumer.Await), and the
// purchase that creates it sends it again (resumingParked).
func unknownSubscription(pe catalog.ProviderEvent) error {
	return consumer.Await(awaitSubscription(pe.SubscriptionID), &unknownSubscriptionError{id: pe.SubscriptionID, event: pe.ProviderEventID})
}

// What a parked event waits for: a subscription, or the index entry of a
// payment (an invoice or payment intent id).
func awaitSubscription(id string) string { return store.Subscriptions + "/" + id }
func awaitPayment(id string) string      { return store.PaymentRefs + "/" + id }

// awaitedExists says whether what a parked event waits for exists now.
func (f *Function) awaitedExists(ctx context.Context, key string) (bool, error) {
	var err error
	if id, ok := strings.CutPrefix(key, store.Subscriptions+"/"); ok {
		_, err = f.d.Store.Subscription(ctx, nil, id)
	} else if id, ok := strings.CutPrefix(key, store.PaymentRefs+"/"); ok {
		var found bool
		_, found, err = f.d.Store.FindPaymentRef(ctx, id)
		if err == nil && !found {
			return false, nil
		}
	} else {
		return false, nil
	}
	if store.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// resumeParked sends again the events parked waiting for what an event of
// type typ creates: a purchase its subscription, a paid purchase or invoice
// the index of its payment (see index). It runs on every delivery Once
// acknowledges, repeats included, so a Resume that failed is finished by the
// redelivery. Other types create nothing awaited and cost no lookup.
func (f *Function) resumeParked(ctx context.Context, typ string, pe catalog.ProviderEvent) error {
	var keys []string
	switch typ {
	case catalog.CheckoutCompleted, catalog.CheckoutAsyncPaymentSucceed, catalog.CheckoutAsyncPaymentFailed:
		keys = append(keys, awaitSubscription(pe.SubscriptionID))
	}
	if indexes(typ) {
		for _, id := range []string{pe.PaymentIntentID, pe.InvoiceID} {
			if id != "" {
				keys = append(keys, awaitPayment(id))
			}
		}
	}
	for _, k := range keys {
		if err := f.Processor.Resume(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

type unknownSubscriptionError struct{ id, event string }

func (e *unknownSubscriptionError) Error() string {
	return "subscription " + e.id + " of provider event " + e.event + " not found (yet)"
}

// resolve finds the subscription of a refund or dispute, which carries no
// metadata of ours, through the index of our invoices and payment intents.
func (f *Function) resolve(ctx context.Context, pe *catalog.ProviderEvent) error {
	if pe.SubscriptionID != "" {
		return nil
	}
	ref, found, err := f.d.Store.FindPaymentRef(ctx, pe.InvoiceID, pe.PaymentIntentID)
	switch {
	case err != nil:
		return err
	case !found:
		// Transient: the payment it refers to may still be on its way
		// (provider events arrive out of order); past the maximum delivery
		// attempts it is parked until the payment is indexed (resumeParked).
		err := &unknownPaymentError{event: pe.ProviderEventID, invoice: pe.InvoiceID, intent: pe.PaymentIntentID}
		if pe.PaymentIntentID != "" { // indexed for every kind of line
			return consumer.Await(awaitPayment(pe.PaymentIntentID), err)
		}
		if pe.InvoiceID != "" {
			return consumer.Await(awaitPayment(pe.InvoiceID), err)
		}
		return err
	}
	pe.SubscriptionID = ref.SubscriptionID
	if pe.ChargeKey == "" {
		pe.ChargeKey = ref.Key
	}
	if pe.InvoiceID == "" {
		pe.InvoiceID = ref.InvoiceID
	}
	return nil
}

// index records the invoice and payment intent of a paid charge, so that
// its refunds and disputes find their ledger line.
func (f *Function) index(tx store.Tx, typ string, sub *subscription.Subscription, pe catalog.ProviderEvent) error {
	if sub == nil || !indexes(typ) {
		return nil
	}
	line := sub.Ledger.ByInvoice(pe.InvoiceID)
	if line == nil && pe.ChargeKey != "" {
		line = sub.Ledger.Find(pe.ChargeKey)
	}
	if line == nil && pe.CheckoutSessionID != "" {
		line = sub.Ledger.Find(purchaseKey(sub))
	}
	if line == nil {
		return nil
	}
	return f.d.Store.IndexPayment(tx, sub.ID, *line, pe.PaymentIntentID)
}

// indexes says whether an event of type typ indexes its payment (index).
func indexes(typ string) bool {
	return typ == catalog.InvoicePaid || typ == catalog.CheckoutCompleted || typ == catalog.CheckoutAsyncPaymentSucceed
}

func purchaseKey(s *subscription.Subscription) string { return "purchase-" + s.PurchaseID }

// both combines two changes of one input: the first that changed something
// is announced, and the history says what each change did.
func both(first, second subscription.Change) subscription.Change {
	if first.Charge == nil {
		first.Charge = second.Charge
	}
	switch {
	case first.NoOp && second.NoOp:
		return first
	case first.NoOp:
		return second
	case !second.NoOp && second.Reason != "":
		first.Reason += "; " + second.Reason
	}
	return first
}

// invoiceClosedUnpaid records a voided or uncollectible invoice. A pending
// renewal's invoice closed unpaid will never be paid: the subscription
// enters dunning as for a failed payment, so it converges to suspended and
// canceled rather than staying active.
func invoiceClosedUnpaid(o ledger.Outcome) transition {
	return func(sub *subscription.Subscription, pe catalog.ProviderEvent) (*subscription.Subscription, subscription.Change, error) {
		if sub == nil {
			return nil, subscription.Change{}, unknownSubscription(pe)
		}
		recorded := sub.ApplyChargeOutcome(pe.ChargeKey, pe.InvoiceID, o, 0, pe.OccurredAt)
		if pe.InvoiceID == "" || pe.InvoiceID != sub.RenewalInvoiceID {
			return sub, recorded, nil
		}
		// Dunning counts from the renewal's first failed payment, at its
		// charge, not from the void (its failure may never have arrived).
		if ln := sub.Ledger.ByInvoice(pe.InvoiceID); ln != nil && ln.Kind == ledger.Renewal {
			if c := sub.RenewalUnpaid(pe.InvoiceID, ln.QuotedAt, pe.OccurredAt, "closed unpaid ("+string(o)+")"); !c.NoOp {
				return sub, both(c, recorded), nil
			}
		}
		return sub, both(sub.ApplyPaymentFailed(sub.TermEnd, pe.OccurredAt, pe.InvoiceID), recorded), nil
	}
}

// chargeRefunded records a refund: in whole it takes back what the charge bought.
func chargeRefunded(sub *subscription.Subscription, pe catalog.ProviderEvent) (*subscription.Subscription, subscription.Change, error) {
	if sub == nil {
		return nil, subscription.Change{}, unknownSubscription(pe)
	}
	o := ledger.PartiallyRefunded
	if pe.Refunded {
		o = ledger.Refunded
	}
	return sub, sub.ApplyChargeOutcome(pe.ChargeKey, pe.InvoiceID, o, pe.RefundedCents, pe.OccurredAt), nil
}

// disputeOutcome records a dispute opened (the team is told) or closed: a
// lost dispute takes back what the charge bought.
func disputeOutcome(sub *subscription.Subscription, pe catalog.ProviderEvent) (*subscription.Subscription, subscription.Change, error) {
	if sub == nil {
		return nil, subscription.Change{}, unknownSubscription(pe)
	}
	o := ledger.Disputed
	switch pe.DisputeStatus {
	case "won":
		o = ledger.DisputeWon
	case "lost":
		o = ledger.DisputeLost
	}
	return sub, sub.ApplyChargeOutcome(pe.ChargeKey, pe.InvoiceID, o, pe.AmountCents, pe.OccurredAt), nil
}

type unknownPaymentError struct{ event, invoice, intent string }

func (e *unknownPaymentError) Error() string {
	return fmt.Sprintf("provider event %s names no subscription, and its invoice %q / payment intent %q are not known (yet)", e.event, e.invoice, e.intent)
}
