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

// park keeps the delivery's event under what it awaits, marks that key,
// then looks once more whether it exists: Resume, run by whoever creates
// it, reads the mark only after its commit, so one of the two sees the
// other. A park that finds it exists sends the parked deliveries itself.
func (p *Processor) park(ctx context.Context, in event.Event, aw *AwaitingError, cause error) error {
	rec := p.deadLetterRecord(in, cause)
	rec.Awaiting = aw.Key
	rec.Topic = ""
	if err := p.Journal.SaveDeadLetter(ctx, p.key(in), rec); err != nil {
		return fmt.Errorf("consumer.park: %w", err)
	}
	if err := p.Journal.MarkParked(ctx, p.Name, aw.Key); err != nil {
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
	return p.resumeAll(ctx, aw.Key)
}

// Resume sends again, on the consumer's own topic (Topic), each delivery
// parked until key existed, with its attempt count cleared, and removes its
// record. Call it after the commit that made key exist, on every delivery
// of that event (a repeat finishes a Resume that failed). Where nothing was
// parked for key it costs one read. A delivery resumed twice is one event
// twice: the consumer dedupes it.
func (p *Processor) Resume(ctx context.Context, key string) error {
	marked, err := p.Journal.IsParked(ctx, p.Name, key)
	if err != nil {
		return fmt.Errorf("consumer.Resume %s: %w", key, err)
	}
	if !marked {
		return nil
	}
	return p.resumeAll(ctx, key)
}

// resumeAll sends again every delivery parked for key, then removes the
// mark. Removing it cannot strand a later park: key exists by now, so that
// park finds it does (Exists) and sends its delivery itself, without the
// mark. A consumer with no Exists keeps the mark: such a park would wait.
func (p *Processor) resumeAll(ctx context.Context, key string) error {
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
	if len(errs) > 0 {
		return errors.Join(errs...) // the mark stays: a repeat finishes the work
	}
	if p.Exists == nil {
		return nil
	}
	if err := p.Journal.UnmarkParked(ctx, p.Name, key); err != nil {
		return fmt.Errorf("consumer.Resume %s: %w", key, err)
	}
	return nil
}

func (p *Processor) resume(ctx context.Context, id string, rec DeadLetter) error {
	if p.Topic == "" {
		return failure.Permanentf("consumer.Resume %s: the consumer has no Topic to send it to", id)
	}
	var e event.Event
	if err := json.Unmarshal([]byte(rec.Event), &e); err != nil {
		return failure.Permanentf("consumer.Resume %s: recorded event undecodable: %w", id, err)
	}
	// Sent again it is a new Pub/Sub message, counted afresh; the count per
	// event (deliveries with no message id) is cleared here.
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
