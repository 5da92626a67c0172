// Package renewal runs on each Cloud Scheduler tick: it charges the next term
// of every auto-renewing subscription whose term ends within the lead time
// (one Stripe invoice per subscription and term, whatever the number of
// ticks) and expires non-renewing subscriptions at term end. The payment's
// result comes back through the provider's webhook.
package renewal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/catalog"
	"fulfillment/shared/cloudevent"
	"fulfillment/shared/consumer"
	"fulfillment/shared/failure"
	"fulfillment/shared/pubsub"
	"fulfillment/shared/store"
	"fulfillment/shared/stripe"
	"fulfillment/shared/subscription"
)

// Name is the function's name in logs, FUNCTION_TARGET and deployments.
const Name = "renewal"

// Biller charges a renewal through the payment provider.
type Biller interface {
	ChargeRenewal(ctx context.Context, r stripe.RenewalInvoice) (string, error)
}

// Deps are what renewal needs.
type Deps struct {
	Store           *store.Store
	Publisher       pubsub.Publisher
	Billing         Biller
	LeadTime        time.Duration
	DeadLetterTopic string
	Logger          *slog.Logger
	Close           func() error
	Now             func() time.Time
}

// Function is renewal.
type Function struct {
	consumer.Base
	d Deps
}

// New returns renewal.
func New(d Deps) *Function {
	if d.Now == nil {
		d.Now = time.Now
	}
	f := &Function{d: d}
	f.Base = consumer.Base{OnClose: d.Close, Processor: &consumer.Processor{
		Name: Name, Store: d.Store, Publisher: d.Publisher, DeadLetterTopic: d.DeadLetterTopic, Logger: d.Logger,
		// A Scheduler tick is a plain Pub/Sub message: it arrives as messagePublished.
		Routes: map[string]consumer.HandlerFunc{
			cloudevent.PubSubMessagePublished: f.RenewOnTick,
			"dev.knative.sources.ping":        f.RenewOnTick, // a PingSource tick on Knative
		},
	}}
	return f
}

// RenewOnTick handles every subscription due at this tick. Each one is its
// own exactly-once unit keyed by subscription and term, so a repeated or
// overlapping tick charges nobody twice. A permanent failure of one
// subscription is dead-lettered without holding up the others; a transient
// one asks for the tick again.
func (f *Function) RenewOnTick(ctx context.Context, tick event.Event) error {
	now := f.d.Now().UTC()
	due, err := f.dueSubscriptions(ctx, now)
	if err != nil {
		return err
	}
	var transient []error
	for _, sub := range due {
		unit, work := f.renewalWork(ctx, sub, now)
		if work == nil {
			continue
		}
		err := f.Processor.Once(ctx, unit, *work)
		switch {
		case err == nil:
		case failure.IsPermanent(err):
			if dlErr := f.Processor.DeadLetter(ctx, unit, err); dlErr != nil {
				transient = append(transient, dlErr)
			}
		default:
			transient = append(transient, fmt.Errorf("%s: %w", sub.ID, err))
		}
	}
	logger := f.d.Logger.With("tick", tick.ID(), "due", len(due), "failed", len(transient))
	logger.InfoContext(ctx, "renewal tick handled")
	return errors.Join(transient...)
}

// republishWindow is how long after term end an expiry is looked at again, so
// that an expiry committed before its publish failed is still announced (the
// unit's dedupe record re-publishes it). Pub/Sub keeps messages 7 days.
const republishWindow = 7 * 24 * time.Hour

// dueSubscriptions lists running subscriptions whose term ends within the
// lead time, and those expired within the re-publish window.
func (f *Function) dueSubscriptions(ctx context.Context, now time.Time) ([]*subscription.Subscription, error) {
	q := f.d.Store.Client.Collection(store.Subscriptions).
		Where("status", "in", []string{string(subscription.Active), string(subscription.PastDue), string(subscription.Expired)}).
		Where("term_end", ">=", now.Add(-republishWindow-f.d.LeadTime)).
		Where("term_end", "<=", now.Add(f.d.LeadTime))
	docs, err := q.Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("renewal.dueSubscriptions: %w", err)
	}
	out := make([]*subscription.Subscription, 0, len(docs))
	for _, d := range docs {
		var s subscription.Subscription
		if err := d.DataTo(&s); err != nil {
			return nil, fmt.Errorf("renewal.dueSubscriptions %s: %w", d.Ref.ID, err)
		}
		out = append(out, &s)
	}
	return out, nil
}

// renewalWork decides what a due subscription needs now: a charge for its
// next term, an expiry, or nothing. unit is the synthetic input that names
// the action, so its dedupe record and events are per subscription and term.
func (f *Function) renewalWork(ctx context.Context, sub *subscription.Subscription, now time.Time) (event.Event, *consumer.Work) {
	term := sub.TermEnd.Format(time.DateOnly)
	switch {
	case sub.RenewalDue(now, f.d.LeadTime):
		unit := unitEvent(sub.ID, "charge", term)
		inv := f.invoice(sub)
		var invoiceID string
		return unit, &consumer.Work{
			Effect: func(ctx context.Context) (err error) {
				invoiceID, err = f.d.Billing.ChargeRenewal(ctx, inv)
				return err
			},
			Apply: f.mutate(unit, sub.ID, func(s *subscription.Subscription) subscription.Change {
				if !s.MarkRenewalPending(invoiceID, now) {
					return subscription.Change{From: s.Status, To: s.Status, NoOp: true, Reason: "renewal already raised"}
				}
				return subscription.Change{From: s.Status, To: s.Status, Reason: "renewal invoice " + invoiceID + " raised"}
			}),
		}
	case sub.Status == subscription.Expired:
		// Already expired: the unit's dedupe record re-publishes its event.
		unit := unitEvent(sub.ID, "expire", term)
		return unit, &consumer.Work{Apply: f.mutate(unit, sub.ID, func(s *subscription.Subscription) subscription.Change {
			return s.ExpireIfEnded(now)
		})}
	case !sub.Order.AutoRenew && !now.Before(sub.TermEnd):
		unit := unitEvent(sub.ID, "expire", term)
		return unit, &consumer.Work{Apply: f.mutate(unit, sub.ID, func(s *subscription.Subscription) subscription.Change {
			return s.ExpireIfEnded(now)
		})}
	}
	return event.Event{}, nil
}

func (f *Function) invoice(sub *subscription.Subscription) stripe.RenewalInvoice {
	plan, _ := catalog.LookupPlan(sub.Order.PlanCode) // validated at purchase
	return stripe.RenewalInvoice{
		SubscriptionID: sub.ID, CustomerID: sub.Customer.ProviderCustomerID, TermStart: sub.TermEnd,
		AmountCents: plan.TermPriceCents(sub.Order), Currency: "usd",
		Description: fmt.Sprintf("%s, %d seats, term from %s", plan.Code, sub.Order.Seats, sub.TermEnd.Format(time.DateOnly)),
	}
}

// mutate re-reads the subscription in the transaction, applies change, saves
// it with its history, and announces any subscription event.
func (f *Function) mutate(unit event.Event, id string, change func(*subscription.Subscription) subscription.Change) func(context.Context, *firestore.Transaction) ([]consumer.Outgoing, error) {
	return func(ctx context.Context, tx *firestore.Transaction) ([]consumer.Outgoing, error) {
		sub, err := f.d.Store.Subscription(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		c := change(sub)
		if err := f.d.Store.SaveSubscription(tx, sub, c, unit.Type(), unit.ID(), cloudevent.Key(unit)); err != nil {
			return nil, err
		}
		if c.NoOp || c.Event == "" {
			return nil, nil
		}
		e, err := cloudevent.New(ctx, cloudevent.DerivedID(unit, c.Event), catalog.SourceRenewal, c.Event, sub.ID, sub.Snapshot(c.Reason))
		if err != nil {
			return nil, err
		}
		return []consumer.Outgoing{{Topic: catalog.TopicSubscriptionEvents, Event: e}}, nil
	}
}

// unitEvent names one renewal action on one subscription and term.
func unitEvent(subscriptionID, action, term string) event.Event {
	e := event.New()
	e.SetID(subscriptionID + "/" + action + "/" + term)
	e.SetSource(catalog.SourceRenewal)
	e.SetType("fulfillment.renewal." + action + ".v1")
	e.SetSubject(subscriptionID)
	return e
}
