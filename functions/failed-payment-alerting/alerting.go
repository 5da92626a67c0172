// Package failedpaymentalerting raises one alert, to Slack and PagerDuty,
// each time payment failures within a sliding window cross a threshold, not
// one per failure.
//
// Each failure is its own document (no hot counter document to fight over);
// the window is counted with an aggregation query. Only the alert state
// document is shared, and it is written only around a crossing.
package failedpaymentalerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/alerting"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/runtime/failure"
	"fulfillment/shared/runtime/telemetry"
)

// Name is the function's name in logs, FUNCTION_TARGET and deployments.
const Name = "failed-payment-alerting"

// failuresCollection keeps one document per payment failure.
const failuresCollection = "payment_failures"

// alertID is the document holding the alert state.
const alertID = "payment-failures"

// Notifier sends an alert somewhere a person sees it.
type Notifier interface {
	Notify(ctx context.Context, a alerting.Alert) error
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, a alerting.Alert) error

// Notify calls f.
func (f NotifierFunc) Notify(ctx context.Context, a alerting.Alert) error { return f(ctx, a) }

// Deps are what the alerting function needs.
type Deps struct {
	Store           *store.Store
	Publisher       pubsub.Publisher
	Slack           Notifier
	PagerDuty       Notifier
	Threshold       int
	Window          time.Duration
	DeadLetterTopic string
	Logger          *slog.Logger
	Close           func() error
	Now             func() time.Time
}

// AlertState is the alert document: firing from one crossing until the
// window falls back under the threshold.
type AlertState struct {
	Firing        bool      `firestore:"firing" json:"firing"`
	DedupKey      string    `firestore:"dedup_key" json:"dedup_key"`
	Count         int64     `firestore:"count" json:"count"`
	Since         time.Time `firestore:"since" json:"since"`
	SlackSent     bool      `firestore:"slack_sent" json:"slack_sent"`
	PagerDutySent bool      `firestore:"pagerduty_sent" json:"pagerduty_sent"`
	Crossings     int64     `firestore:"crossings" json:"crossings"`
	// Claims name the delivery sending to each destination, so concurrent
	// deliveries do not both send; a claim older than claimLease is free again.
	Claims map[string]Claim `firestore:"claims" json:"claims,omitempty"`
}

// Claim records which delivery is sending an alert to a destination.
type Claim struct {
	By string    `firestore:"by" json:"by"`
	At time.Time `firestore:"at" json:"at"`
}

// claimLease bounds how long a claimant that died keeps others from sending.
const claimLease = 30 * time.Second

// Function is failed-payment-alerting.
type Function struct {
	consumer.Base
	d Deps
}

// New returns the alerting function.
func New(d Deps) *Function {
	if d.Now == nil {
		d.Now = time.Now
	}
	f := &Function{d: d}
	f.Base = consumer.Base{OnClose: d.Close, Processor: &consumer.Processor{
		Name: Name, Store: d.Store, Publisher: d.Publisher, DeadLetterTopic: d.DeadLetterTopic, Logger: d.Logger,
		Routes: map[string]consumer.HandlerFunc{catalog.PaymentFailed: f.CountOnPaymentFailed},
	}}
	return f
}

// CountOnPaymentFailed records the failure, then evaluates the window. The
// evaluation also runs for a redelivery, so an alert whose sending failed is
// sent on the retry.
func (f *Function) CountOnPaymentFailed(ctx context.Context, in event.Event) error {
	var pf catalog.PaymentFailure
	if err := cloudevent.DecodeData(in, &pf); err != nil {
		return err
	}
	err := f.Processor.Once(ctx, in, consumer.Work{Apply: func(ctx context.Context, tx *firestore.Transaction) ([]consumer.Outgoing, error) {
		return nil, tx.Set(f.d.Store.Doc(failuresCollection, cloudevent.Key(in)), map[string]any{
			"subscription_id": pf.SubscriptionID, "provider_event_id": pf.ProviderEventID,
			"amount_cents": pf.AmountCents, "at": f.d.Now().UTC(),
		})
	}})
	if err != nil {
		return err
	}
	telemetry.PaymentFailed(ctx, Name)
	return f.evaluate(ctx, cloudevent.Key(in))
}

// evaluate counts the window and moves the alert state: it fires on a
// crossing (one alert, whose dedup key comes from the crossing event) and
// clears when the window falls back under the threshold.
func (f *Function) evaluate(ctx context.Context, crossingKey string) error {
	count, err := f.windowCount(ctx)
	if err != nil {
		return err
	}
	ref := f.d.Store.Doc(store.Alerts, alertID)
	var state AlertState
	err = f.d.Store.Client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		state = AlertState{}
		if err := f.d.Store.Get(ctx, tx, ref, &state); err != nil && !store.IsNotFound(err) {
			return err
		}
		switch {
		case count >= int64(f.d.Threshold) && !state.Firing:
			state = AlertState{Firing: true, DedupKey: "payment-failures-" + crossingKey, Count: count,
				Since: f.d.Now().UTC(), Crossings: state.Crossings + 1}
		case count < int64(f.d.Threshold) && state.Firing:
			state.Firing = false
		default:
			return nil // no change: no write, no contention
		}
		return tx.Set(ref, state)
	})
	if err != nil {
		return fmt.Errorf("failedpaymentalerting.evaluate: %w", err)
	}
	if !state.Firing {
		return nil
	}
	return f.notify(ctx, ref, state, crossingKey)
}

func (f *Function) windowCount(ctx context.Context) (int64, error) {
	since := f.d.Now().Add(-f.d.Window).UTC()
	q := f.d.Store.Client.Collection(failuresCollection).Where("at", ">=", since)
	res, err := q.NewAggregationQuery().WithCount("n").Get(ctx)
	if err != nil {
		return 0, fmt.Errorf("failedpaymentalerting.windowCount: %w", err)
	}
	return aggregateInt(res["n"])
}

// notify sends what the firing alert has not yet sent, marking each
// destination once it accepted: a retry sends only what is missing. me names
// this delivery; a redelivery of it may take over its own claim.
func (f *Function) notify(ctx context.Context, ref *firestore.DocumentRef, s AlertState, me string) error {
	a := alerting.Alert{
		DedupKey: s.DedupKey, Severity: "critical", Source: "fulfillment/" + Name,
		Summary: fmt.Sprintf("%d payment failures in the last %s (threshold %d)", s.Count, f.d.Window, f.d.Threshold),
		Details: map[string]any{"count": s.Count, "window": f.d.Window.String(), "threshold": f.d.Threshold, "since": s.Since.Format(time.RFC3339)},
	}
	// Page first, and try every destination: one broken channel must not
	// keep the alert from the others.
	destinations := []struct {
		field string
		to    Notifier
	}{{"pagerduty_sent", f.d.PagerDuty}, {"slack_sent", f.d.Slack}}
	var errs []error
	for _, d := range destinations {
		if d.to == nil {
			continue
		}
		mine, err := f.claim(ctx, ref, s.DedupKey, d.field, me)
		if err != nil || !mine {
			errs = append(errs, err)
			continue
		}
		if err := d.to.Notify(ctx, a); err != nil {
			errs = append(errs, fmt.Errorf("failedpaymentalerting.notify %s: %w", d.field, err))
			continue
		}
		if _, err := ref.Update(ctx, []firestore.Update{{Path: d.field, Value: true}}); err != nil {
			errs = append(errs, fmt.Errorf("failedpaymentalerting.notify mark %s: %w", d.field, err))
			continue
		}
		f.d.Logger.WarnContext(ctx, "payment failure alert sent", "to", d.field, "dedup_key", s.DedupKey, "count", s.Count)
	}
	return joinDestinationErrors(errs)
}

// joinDestinationErrors joins the destinations' errors. The result is
// permanent only when every error is: a destination that failed transiently
// must be retried even if another refused for good (destinations already
// marked sent are skipped on the retry). A permanent error kept in a
// transient join would make failure.IsPermanent dead-letter the whole
// delivery, so then the permanent ones are kept only as text.
func joinDestinationErrors(errs []error) error {
	var transient, permanent []error
	for _, err := range errs {
		switch {
		case err == nil:
		case failure.IsPermanent(err):
			permanent = append(permanent, err)
		default:
			transient = append(transient, err)
		}
	}
	if len(transient) == 0 {
		return errors.Join(permanent...)
	}
	for _, err := range permanent {
		transient = append(transient, errors.New(err.Error()))
	}
	return errors.Join(transient...)
}

// claim takes the right to send the firing alert to one destination: false
// when it was sent already or another delivery holds a live claim.
func (f *Function) claim(ctx context.Context, ref *firestore.DocumentRef, dedupKey, field, me string) (bool, error) {
	var mine bool
	err := f.d.Store.Client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		mine = false
		var s AlertState
		if err := f.d.Store.Get(ctx, tx, ref, &s); err != nil {
			return err
		}
		sent := map[string]bool{"slack_sent": s.SlackSent, "pagerduty_sent": s.PagerDutySent}[field]
		c, held := s.Claims[field]
		now := f.d.Now().UTC()
		if s.DedupKey != dedupKey || sent || (held && c.By != me && now.Sub(c.At) < claimLease) {
			return nil
		}
		mine = true
		return tx.Update(ref, []firestore.Update{{FieldPath: firestore.FieldPath{"claims", field}, Value: Claim{By: me, At: now}}})
	})
	if err != nil {
		return false, fmt.Errorf("failedpaymentalerting.claim %s: %w", field, err)
	}
	return mine, nil
}
