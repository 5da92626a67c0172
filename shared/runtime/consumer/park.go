package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/runtime/failure"
	"fulfillment/shared/runtime/logging"
)

// AwaitingError is a transient failure that waits for something to exist:
// a subscription whose purchase event is still on its way (provider events
// arrive out of order, and a purchase's webhook can be retried by Stripe for
// hours). On the last delivery attempt such a delivery is not given up on:
// it is parked in dead_letters under Key (listed and replayable like any
// dead letter) and Resume(Key) sends it again once the thing exists.
type AwaitingError struct {
	Key string // what the delivery waits for, e.g. "subscriptions/sub-1"
	Err error
}

func (e *AwaitingError) Error() string { return e.Err.Error() }
func (e *AwaitingError) Unwrap() error { return e.Err }

// Await marks err as waiting for key to exist.
func Await(key string, err error) error { return &AwaitingError{Key: key, Err: err} }

// park keeps the delivery's event under what it awaits, then looks once
// more whether that exists: Resume, run by whoever creates it, looks for
// parked deliveries only after its commit, so one of the two sees the other.
func (p *Processor) park(ctx context.Context, in event.Event, aw *AwaitingError, cause error) error {
	rec := p.deadLetterRecord(in, cause)
	rec.Awaiting = aw.Key
	rec.Topic = ""
	if err := p.Journal.SaveDeadLetter(ctx, p.key(in), rec); err != nil {
		return fmt.Errorf("consumer.park: %w", err)
	}
	logging.FromContext(ctx).WarnContext(ctx, "parked until what it awaits exists", "awaiting", aw.Key)
	if p.Exists == nil {
		return nil
	}
	exists, err := p.Exists(ctx, aw.Key)
	if err != nil || !exists {
		return err
	}
	return p.Resume(ctx, aw.Key)
}

// Resume sends again, on the consumer's own topic (Topic), each delivery
// parked until key existed, with its attempt count cleared, and removes its
// record. Call it after the commit that made key exist, on every delivery
// of that event (a repeat finishes a Resume that failed). A delivery resumed
// twice is one event twice: the consumer dedupes it.
func (p *Processor) Resume(ctx context.Context, key string) error {
	parked, err := p.Journal.ParkedDeadLetters(ctx, p.Name, key)
	if err != nil {
		return fmt.Errorf("consumer.Resume %s: %w", key, err)
	}
	var errs []error
	for id, rec := range parked {
		if err := p.resume(ctx, id, rec); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p *Processor) resume(ctx context.Context, id string, rec DeadLetter) error {
	if p.Topic == "" {
		return failure.Permanentf("consumer.Resume %s: the consumer has no Topic to send it to", id)
	}
	var e event.Event
	if err := json.Unmarshal([]byte(rec.Event), &e); err != nil {
		return failure.Permanentf("consumer.Resume %s: recorded event undecodable: %w", id, err)
	}
	if err := p.Journal.ClearFailedAttempts(ctx, id); err != nil {
		return fmt.Errorf("consumer.Resume %s: %w", id, err)
	}
	if err := p.Publisher.Publish(ctx, p.Topic, e); err != nil {
		return fmt.Errorf("consumer.Resume %s: %w", id, err)
	}
	if err := p.Journal.DeleteDeadLetter(ctx, id); err != nil {
		return fmt.Errorf("consumer.Resume %s: %w", id, err)
	}
	logging.FromContext(ctx).InfoContext(ctx, "parked delivery sent again", "parked_event_id", rec.EventID, "awaiting", rec.Awaiting)
	return nil
}
