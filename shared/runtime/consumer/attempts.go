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
func (p *Processor) attempt(ctx context.Context, delivery, in event.Event) int {
	d := deliveryOf(ctx, delivery)
	n, err := p.Journal.CountFailedAttempt(ctx, p.attemptKey(in, d.MessageID), processedTTL)
	if err != nil {
		// Counting is best effort: Pub/Sub still dead-letters past the limit.
		logging.FromContext(ctx).WarnContext(ctx, "delivery attempt not counted", "error", err.Error())
	}
	return max(n, d.Attempt)
}

// attemptKey counts per Pub/Sub message, as Pub/Sub does: one event can be
// carried by several messages (a repeat re-publishes its recorded events,
// a webhook repeat can publish its event again), each retried on its own,
// and one copy's failures must not use up another's attempts. A delivery
// with no message id (a CloudEvent sent directly) counts per event.
func (p *Processor) attemptKey(in event.Event, messageID string) string {
	if messageID == "" {
		return p.key(in)
	}
	return p.key(in) + "_m" + messageID
}

// deliveryOf is what the push said of the delivery, or for a
// messagePublished event (Eventarc), whose id is the message id, that id.
func deliveryOf(ctx context.Context, delivery event.Event) cloudevent.Delivery {
	d := cloudevent.DeliveryOf(ctx)
	if d.MessageID == "" && delivery.Type() == cloudevent.PubSubMessagePublished {
		d.MessageID = delivery.ID()
	}
	return d
}
