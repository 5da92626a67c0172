package consumer

import (
	"context"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/store"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/logging"
)

// Attempts counts, per consumer and event, the deliveries that failed
// transiently. Pub/Sub's push carries deliveryAttempt on GCP, but the
// emulator does not send it; counting ourselves makes the last attempt
// visible on both.
const Attempts = "delivery_attempts"

type attemptRecord struct {
	Failures int       `firestore:"failures"`
	Last     time.Time `firestore:"last"`
	ExpireAt time.Time `firestore:"expire_at"`
}

// attempt records one more failed delivery of in and returns which attempt
// this was: the larger of Pub/Sub's count and ours.
func (p *Processor) attempt(ctx context.Context, in event.Event) int {
	ref := p.Store.Doc(Attempts, p.Name+"_"+cloudevent.Key(in))
	var n int
	err := p.Store.Client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		var rec attemptRecord
		if err := p.Store.Get(ctx, tx, ref, &rec); err != nil && !store.IsNotFound(err) {
			return err
		}
		n = rec.Failures + 1
		now := time.Now().UTC()
		return tx.Set(ref, attemptRecord{Failures: n, Last: now, ExpireAt: now.Add(processedTTL)})
	})
	if err != nil {
		// Counting is best effort: Pub/Sub still dead-letters past the limit.
		logging.FromContext(ctx).WarnContext(ctx, "delivery attempt not counted", "error", err.Error())
	}
	return max(n, cloudevent.DeliveryAttempt(ctx))
}
