package failedpaymentalerting

import (
	"context"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/alerting"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/runtime/cloudevent"
)

// AlertOnQuoteMismatch pages at once when a completed checkout was refused
// against its quote: someone paid and got nothing, or paid the wrong
// amount, and a person must refund or provision by hand. One alert per
// refusal; a redelivery sends only what was not sent.
func (f *Function) AlertOnQuoteMismatch(ctx context.Context, in event.Event) error {
	var m catalog.QuoteMismatch
	if err := cloudevent.DecodeData(in, &m); err != nil {
		return err
	}
	docID := "quote-mismatch-" + cloudevent.Key(in)
	state, err := f.d.Store.UpdateAlert(ctx, docID, func(s *AlertState) bool {
		if s.Firing {
			return false
		}
		*s = AlertState{Firing: true, DedupKey: docID, Count: 1, Since: f.d.Now().UTC()}
		return true
	})
	if err != nil {
		return fmt.Errorf("failedpaymentalerting.AlertOnQuoteMismatch: %w", err)
	}
	return f.notify(ctx, docID, state, alerting.Alert{
		Severity: "error",
		Summary: fmt.Sprintf("checkout %s was paid but not provisioned (%s): refund it or provision it by hand",
			m.CheckoutSessionID, m.Reason),
		Details: map[string]any{"quote": m.QuoteID, "session": m.CheckoutSessionID, "reason": m.Reason,
			"expected_cents": m.ExpectedCents, "paid_cents": m.PaidCents, "currency": m.Currency},
	}, cloudevent.Key(in))
}
