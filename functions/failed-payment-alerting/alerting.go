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

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/alerting"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/idempotency"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/runtime/failure"
	"fulfillment/shared/runtime/telemetry"
)

// Name is the function's name in logs, FUNCTION_TARGET and deployments.
const Name = "failed-payment-alerting"

// failuresCollection keeps one document per payment failure.
const failuresCollection = store.PaymentFailures

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

// AlertState is the alert document (store.AlertState).
type AlertState = store.AlertState

// Claim records which delivery is sending an alert to a destination.
type Claim = store.Claim

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
		Name: Name, Journal: d.Store, Publisher: d.Publisher, DeadLetterTopic: d.DeadLetterTopic, Logger: d.Logger,
		Routes: map[string]consumer.HandlerFunc{
			catalog.PaymentFailed:         f.CountOnPaymentFailed,
			catalog.PaymentDisputed:       f.AlertOnPaymentDisputed,
			catalog.CheckoutQuoteMismatch: f.AlertOnQuoteMismatch,
		},
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
	at := failureTime(pf, f.d.Now())
	err := f.Processor.Once(ctx, in, consumer.Work{Apply: func(ctx context.Context, tx store.Tx) ([]consumer.Outgoing, error) {
		return nil, f.d.Store.SavePaymentFailure(tx, cloudevent.Key(in), store.PaymentFailureRecord{
			SubscriptionID: pf.SubscriptionID, ProviderEventID: pf.ProviderEventID, AmountCents: pf.AmountCents, At: at,
		})
	}})
	if err != nil {
		return err
	}
	telemetry.PaymentFailed(ctx, Name)
	return f.evaluate(ctx, cloudevent.Key(in))
}

// failureTime is when the failure happened, which the window counts by: a
// backlog replayed hours later must not page as if it were happening now.
// A failure without a time, or dated after now (a skewed clock), counts as
// happening now.
func failureTime(pf catalog.PaymentFailure, now time.Time) time.Time {
	if pf.OccurredAt.IsZero() || pf.OccurredAt.After(now) {
		return now.UTC()
	}
	return pf.OccurredAt.UTC()
}

// evaluate counts the window and moves the alert state (see nextAlertState),
// then sends what a firing alert has not yet sent.
func (f *Function) evaluate(ctx context.Context, crossingKey string) error {
	count, err := f.d.Store.PaymentFailuresSince(ctx, f.d.Now().Add(-f.d.Window).UTC())
	if err != nil {
		return fmt.Errorf("failedpaymentalerting.evaluate: %w", err)
	}
	state, err := f.d.Store.UpdateAlert(ctx, alertID, func(cur *AlertState) bool {
		next, changed := nextAlertState(*cur, count, int64(f.d.Threshold), crossingKey, f.d.Now().UTC())
		*cur = next
		return changed // no change: no write, no contention
	})
	if err != nil {
		return fmt.Errorf("failedpaymentalerting.evaluate: %w", err)
	}
	if !state.Firing {
		return nil
	}
	return f.notify(ctx, alertID, state, alerting.Alert{
		Severity: "critical",
		Summary:  fmt.Sprintf("%d payment failures in the last %s (threshold %d)", state.Count, f.d.Window, f.d.Threshold),
		Details:  map[string]any{"count": state.Count, "window": f.d.Window.String(), "threshold": f.d.Threshold, "since": state.Since.Format(time.RFC3339)},
	}, crossingKey)
}

// nextAlertState decides the alert from the window's count: it fires on a
// crossing (one alert, whose dedup key comes from the crossing event) and
// clears when the window falls back under the threshold; changed says
// whether there is anything to write.
func nextAlertState(cur AlertState, count, threshold int64, crossingKey string, now time.Time) (next AlertState, changed bool) {
	switch {
	case count >= threshold && !cur.Firing:
		return AlertState{Firing: true, DedupKey: idempotency.PaymentFailuresAlert(crossingKey), Count: count,
			Since: now, Crossings: cur.Crossings + 1}, true
	case count < threshold && cur.Firing:
		cur.Firing = false
		return cur, true
	}
	return cur, false
}

// notify sends what the firing alert has not yet sent, marking each
// destination once it accepted: a retry sends only what is missing. me names
// this delivery; a redelivery of it may take over its own claim.
func (f *Function) notify(ctx context.Context, docID string, s AlertState, a alerting.Alert, me string) error {
	a.DedupKey, a.Source = s.DedupKey, "fulfillment/"+Name
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
		mine, err := f.claim(ctx, docID, s.DedupKey, d.field, me)
		if err != nil || !mine {
			errs = append(errs, err)
			continue
		}
		if err := d.to.Notify(ctx, a); err != nil {
			errs = append(errs, fmt.Errorf("failedpaymentalerting.notify %s: %w", d.field, err))
			continue
		}
		if err := f.markSent(ctx, docID, s.DedupKey, d.field); err != nil {
			errs = append(errs, fmt.Errorf("failedpaymentalerting.notify mark %s: %w", d.field, err))
			continue
		}
		f.d.Logger.WarnContext(ctx, "alert sent", "to", d.field, "dedup_key", s.DedupKey, "summary", a.Summary)
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
func (f *Function) claim(ctx context.Context, docID, dedupKey, field, me string) (bool, error) {
	now := f.d.Now().UTC()
	s, err := f.d.Store.UpdateAlert(ctx, docID, func(s *AlertState) bool {
		c, held := s.Claims[field]
		if s.DedupKey != dedupKey || alreadySent(*s, field) || (held && c.By != me && now.Sub(c.At) < claimLease) {
			return false
		}
		if s.Claims == nil {
			s.Claims = map[string]Claim{}
		}
		s.Claims[field] = Claim{By: me, At: now}
		return true
	})
	if err != nil {
		return false, fmt.Errorf("failedpaymentalerting.claim %s: %w", field, err)
	}
	return s.DedupKey == dedupKey && !alreadySent(s, field) && s.Claims[field].By == me, nil
}

func alreadySent(s AlertState, field string) bool {
	return map[string]bool{"slack_sent": s.SlackSent, "pagerduty_sent": s.PagerDutySent}[field]
}

// markSent records that the firing alert reached one destination.
func (f *Function) markSent(ctx context.Context, docID, dedupKey, field string) error {
	_, err := f.d.Store.UpdateAlert(ctx, docID, func(s *AlertState) bool {
		if s.DedupKey != dedupKey {
			return false // a later crossing replaced this alert
		}
		switch field {
		case "slack_sent":
			s.SlackSent = true
		case "pagerduty_sent":
			s.PagerDutySent = true
		}
		return true
	})
	return err
}

// AlertOnPaymentDisputed tells the team at once that a customer disputed a
// charge: a dispute has a deadline to answer, unlike a failure, which is
// counted. Each dispute is one alert (its own document and dedup key); a
// redelivery sends only what was not sent.
func (f *Function) AlertOnPaymentDisputed(ctx context.Context, in event.Event) error {
	var snap catalog.SubscriptionSnapshot
	if err := cloudevent.DecodeData(in, &snap); err != nil {
		return err
	}
	docID := idempotency.DisputeAlert(cloudevent.Key(in))
	state, err := f.d.Store.UpdateAlert(ctx, docID, func(s *AlertState) bool {
		if s.Firing {
			return false
		}
		*s = AlertState{Firing: true, DedupKey: docID, Count: 1, Since: f.d.Now().UTC()}
		return true
	})
	if err != nil {
		return fmt.Errorf("failedpaymentalerting.AlertOnPaymentDisputed: %w", err)
	}
	return f.notify(ctx, docID, state, alerting.Alert{
		Severity: "error",
		Summary:  fmt.Sprintf("a charge of subscription %s was disputed: answer it in Stripe before its deadline", snap.ID),
		Details:  map[string]any{"subscription": snap.ID, "plan": snap.Order.PlanCode, "reason": snap.Reason},
	}, cloudevent.Key(in))
}
