// Package paymentresult owns the subscription state machine: it applies
// provider events (purchases, payments, failures, cancellations) to the
// subscription in Firestore, with a history record per input, and announces
// each change on the subscription-events topic.
package paymentresult

import (
	"context"
	"log/slog"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
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
	Logger          *slog.Logger
	Close           func() error
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
		Routes: map[string]consumer.HandlerFunc{
			catalog.CheckoutCompleted:           f.step(purchase),
			catalog.CheckoutAsyncPaymentSucceed: f.step(settleInitialPayment(true)),
			catalog.CheckoutAsyncPaymentFailed:  f.step(settleInitialPayment(false)),
			catalog.InvoicePaid:                 f.step(invoicePaid),
			catalog.InvoicePaymentFailed:        f.step(invoicePaymentFailed),
			catalog.ProviderSubscriptionDeleted: f.step(cancel),
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
		if pe.SubscriptionID == "" {
			return failure.Permanentf("provider event %s names no subscription", pe.ProviderEventID)
		}
		return f.Processor.Once(ctx, in, consumer.Work{
			Apply: func(ctx context.Context, tx store.Tx) ([]consumer.Outgoing, error) {
				sub, err := f.d.Store.Subscription(ctx, tx, pe.SubscriptionID)
				if err != nil && !store.IsNotFound(err) {
					return nil, err
				}
				next, change, err := apply(sub, pe)
				if err != nil {
					return nil, err
				}
				if err := f.d.Store.SaveSubscription(tx, next, change, in.Type(), in.ID(), cloudevent.Key(in)); err != nil {
					return nil, err
				}
				return announce(ctx, in, next, change, pe)
			},
		})
	}
}

// announce builds the events that tell the other functions what changed.
func announce(ctx context.Context, in event.Event, sub *subscription.Subscription, change subscription.Change, pe catalog.ProviderEvent) ([]consumer.Outgoing, error) {
	var out []consumer.Outgoing
	if change.Event != "" && !change.NoOp {
		e, err := cloudevent.New(ctx, cloudevent.DerivedID(in, change.Event), catalog.SourcePaymentResult, change.Event, sub.ID, sub.Snapshot(change.Reason))
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
	return subscription.Purchase(pe.SubscriptionID, pe.CheckoutSessionID, *pe.Order, *pe.Customer, paid, pe.OccurredAt)
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
		return sub, sub.SettleInitialPayment(succeeded, pe.OccurredAt), nil
	}
}

func invoicePaid(sub *subscription.Subscription, pe catalog.ProviderEvent) (*subscription.Subscription, subscription.Change, error) {
	if sub == nil {
		return nil, subscription.Change{}, unknownSubscription(pe)
	}
	return sub, sub.ApplyInvoicePaid(pe.TermStart, pe.OccurredAt), nil
}

func invoicePaymentFailed(sub *subscription.Subscription, pe catalog.ProviderEvent) (*subscription.Subscription, subscription.Change, error) {
	if sub == nil {
		return nil, subscription.Change{}, unknownSubscription(pe)
	}
	return sub, sub.ApplyPaymentFailed(pe.TermStart, pe.OccurredAt, pe.InvoiceID), nil
}

func cancel(sub *subscription.Subscription, pe catalog.ProviderEvent) (*subscription.Subscription, subscription.Change, error) {
	if sub == nil {
		return nil, subscription.Change{}, unknownSubscription(pe)
	}
	return sub, sub.Cancel(pe.OccurredAt, "canceled at the provider"), nil
}

// unknownSubscription is transient: the purchase event may still be on its
// way (provider events arrive out of order). Past the subscription's maximum
// delivery attempts Pub/Sub moves the event to the dead-letter topic.
func unknownSubscription(pe catalog.ProviderEvent) error {
	return &unknownSubscriptionError{id: pe.SubscriptionID, event: pe.ProviderEventID}
}

type unknownSubscriptionError struct{ id, event string }

func (e *unknownSubscriptionError) Error() string {
	return "subscription " + e.id + " of provider event " + e.event + " not found (yet)"
}
