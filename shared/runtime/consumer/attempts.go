package consumer

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/logging"
)

// attempt records one more failed delivery of in and returns which attempt
// this was: the larger of Pub/Sub's count and ours. Pub/Sub's push carries
// deliveryAttempt on GCP, but the emulator does not send it; counting
// ourselves makes the last attempt visible on both.
func (p *Processor) attempt(ctx context.Context, in event.Event) int {
	n, err := p.Journal.CountFailedAttempt(ctx, p.key(in), processedTTL)
	if err != nil {
		// Counting is best effort: Pub/Sub still dead-letters past the limit.
		logging.FromContext(ctx).WarnContext(ctx, "delivery attempt not counted", "error", err.Error())
	}
	return max(n, cloudevent.DeliveryAttempt(ctx))
}
