// Package consumer is the idempotent-consumer machinery every CloudEvents
// function runs on: at-least-once deliveries in, exactly-once effects out.
//
// A delivery is deduped on its CloudEvent source and id in the same Firestore
// transaction as the state change, and the events it causes are recorded with
// the dedupe record and published after commit. A redelivery of an event
// already processed publishes the recorded events again (they have
// deterministic ids, so the next consumer dedupes them) and acknowledges.
// Errors decide delivery: transient ones are returned (Pub/Sub redelivers with
// backoff), permanent ones are recorded in dead_letters, sent to the
// dead-letter topic, and acknowledged.
package consumer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/failure"
	"fulfillment/shared/runtime/faultpoint"
	"fulfillment/shared/runtime/logging"
	"fulfillment/shared/runtime/telemetry"
)

// processedTTL is how long a dedupe record is kept (a Firestore TTL policy
// on expire_at deletes it); Pub/Sub keeps redelivering for at most 7 days.
const processedTTL = 30 * 24 * time.Hour

// DefaultMaxDeliveryAttempts matches the topology's max_delivery_attempts:
// the delivery Pub/Sub will not repeat.
const DefaultMaxDeliveryAttempts = 10

// Crash points the fault-injection suite can kill a consumer at (see faultpoint).
const (
	CrashBeforeCommit = "consumer.before-commit"
	CrashAfterCommit  = "consumer.after-commit"
)

// Outgoing is an event to publish after the transaction commits.
type Outgoing struct {
	Topic string
	Event event.Event
}

// Work is what one delivery does: a state change (Apply) and, when made
// by WithEffect, an outside call before it whose result Apply is given.
type Work struct {
	// Apply changes state inside the transaction and returns the events to
	// publish after commit. It may run more than once: Firestore only. Work
	// with an outside call is made by WithEffect instead, which binds its own.
	Apply func(ctx context.Context, tx store.Tx) ([]Outgoing, error)
	// effect, set by WithEffect, makes the outside call and returns the
	// state change bound to its result (which replaces Apply).
	effect func(ctx context.Context) (func(context.Context, store.Tx) ([]Outgoing, error), error)
	// effectOnly, set by EffectOnly: there is no state change, so the
	// dedupe record is created alone, with no transaction.
	effectOnly bool
	// Serialize, when set, names what deliveries must not work on at the
	// same time (a subscription id): the delivery holds a lease on it from
	// before the effect until its transaction commits, so two versions of one
	// subscription never reach an outside system concurrently.
	Serialize string
	// Version, with Serialize, orders the deliveries for that key (for
	// VersionOf, when set): one older than a version already attempted (its
	// outside call made, maybe not yet committed) does nothing but record
	// that it was seen. The newer one is redelivered until it commits, so
	// the target never goes back.
	Version int64
	// VersionOf, when set, is what Version counts the versions of, where
	// that is not what the lease is on: provisioning holds a namespace's
	// lease, and orders the versions of each subscription.
	VersionOf string
	// Again, with Version, is set before the effect runs to whether this
	// version was attempted before: only then can an earlier delivery have
	// made the outside call without committing (a crash in between), and
	// the effect need look at what the target holds first.
	Again *bool
	// Prefetch, with Serialize, are documents the effect reads before its
	// outside call (what the target was last given): they are read under
	// the lease in the request that reads the delivery's dedupe record, each
	// into its Into with Found set, before the effect runs.
	Prefetch []*store.Read
	// Reads are documents Apply reads: the transaction reads them in its
	// first request, with the delivery's dedupe record, and Apply's Gets
	// of them are answered from it (one request, not one per document).
	Reads []store.Key
}

// WithEffect is work with an outside call. effect runs before the
// transaction, only for deliveries not yet processed, and must be idempotent
// (it runs again if the transaction fails): it carries the provider's
// idempotency key. Its result is handed to apply, which changes state inside
// the transaction and returns the events to publish after commit; apply may
// run more than once (Firestore only) and gets the same result each time.
// apply does not run if effect fails.
func WithEffect[R any](effect func(ctx context.Context) (R, error), apply func(ctx context.Context, tx store.Tx, result R) ([]Outgoing, error)) Work {
	bound := func(ctx context.Context) (func(context.Context, store.Tx) ([]Outgoing, error), error) {
		r, err := effect(ctx)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, tx store.Tx) ([]Outgoing, error) { return apply(ctx, tx, r) }, nil
	}
	return Work{effect: bound}
}

// AfterEffect is WithEffect for an outside call that returns nothing the
// state change needs: apply runs only once effect has succeeded.
func AfterEffect(effect func(ctx context.Context) error, apply func(ctx context.Context, tx store.Tx) ([]Outgoing, error)) Work {
	return WithEffect(func(ctx context.Context) (struct{}, error) { return struct{}{}, effect(ctx) },
		func(ctx context.Context, tx store.Tx, _ struct{}) ([]Outgoing, error) { return apply(ctx, tx) })
}

// EffectOnly is work whose outside call is all it does: no state changes
// with it and nothing is published after it. Its dedupe record is created
// once effect has succeeded, in one write with no transaction (there is
// nothing to commit atomically with it).
func EffectOnly(effect func(ctx context.Context) error) Work {
	w := AfterEffect(effect, func(context.Context, store.Tx) ([]Outgoing, error) { return nil, nil })
	w.effectOnly = true
	return w
}

// HandlerFunc handles one event type.
type HandlerFunc func(ctx context.Context, in event.Event) error

// Processor runs the deliveries of one consumer.
type Processor struct {
	Name string
	// Journal keeps the bookkeeping: dedupe records with their outgoing
	// events, leases, version claims, attempt counts, dead letters.
	Journal         Journal
	Publisher       pubsub.Publisher
	DeadLetterTopic string
	Logger          *slog.Logger
	// Routes maps event types to handlers. Other types are acknowledged and
	// logged as ignored: topics fan out every type to every consumer.
	Routes map[string]HandlerFunc
	// MaxDeliveryAttempts is the subscription's dead-letter threshold (0:
	// DefaultMaxDeliveryAttempts). A transient failure on the last attempt
	// is recorded in dead_letters: Pub/Sub would not deliver it again.
	MaxDeliveryAttempts int
	// Topic is where the consumer's deliveries come from: a delivery parked
	// awaiting something (AwaitingError) is sent there again by Resume.
	Topic string
	// Exists, when set, says whether what a parked delivery awaits exists
	// (park.go); without it a parked delivery waits for Resume alone.
	Exists func(ctx context.Context, key string) (bool, error)
	// clock, when set, is the leases' clock in place of time.Now (tests).
	clock func() time.Time
}

func (p *Processor) maxAttempts() int {
	if p.MaxDeliveryAttempts > 0 {
		return p.MaxDeliveryAttempts
	}
	return DefaultMaxDeliveryAttempts
}

// Handle processes one delivery and decides its fate: nil acknowledges it,
// an error asks for redelivery.
func (p *Processor) Handle(ctx context.Context, delivery event.Event) error {
	in, err := cloudevent.Unwrap(delivery)
	ctx, tel := telemetry.StartDelivery(ctx, p.Name, in)
	defer func() { tel.End(ctx, err) }()
	log := p.Logger.With("event_id", in.ID(), "event_type", in.Type())
	ctx = logging.WithContext(ctx, log)
	if err == nil {
		route, ok := p.Routes[in.Type()]
		if !ok {
			tel.Ignore()
			log.DebugContext(ctx, "event type not handled here; acknowledged")
			return nil
		}
		err = route(ctx, in)
	}
	// The failure's text is logged, kept in dead_letters and recorded on the
	// span: no e-mail address or secret in it (DESIGN.md rule 7).
	err = failure.Scrubbed(err)
	switch {
	case err == nil:
		log.InfoContext(ctx, "event handled", "subject", in.Subject())
		return nil
	case failure.IsPermanent(err):
		log.WarnContext(ctx, "permanent failure; dead-lettering", "error", err.Error())
		if dlErr := p.DeadLetter(ctx, in, err); dlErr != nil {
			return fmt.Errorf("%s: dead-letter failed, redeliver: %w", p.Name, dlErr)
		}
		return nil
	case p.attempt(ctx, delivery, in) >= p.maxAttempts():
		if aw := (*AwaitingError)(nil); errors.As(err, &aw) {
			cause := fmt.Errorf("parked after %d delivery attempts until %s exists: %w", p.maxAttempts(), aw.Key, err)
			if pErr := p.park(ctx, in, aw, cause); pErr != nil {
				return fmt.Errorf("%s: park failed: %w", p.Name, pErr)
			}
			return nil
		}
		cause := fmt.Errorf("gave up after %d delivery attempts: %w", p.maxAttempts(), err)
		log.WarnContext(ctx, "transient failure on the last delivery attempt; dead-lettering", "error", cause.Error())
		if dlErr := p.DeadLetter(ctx, in, cause); dlErr != nil {
			return fmt.Errorf("%s: dead-letter failed: %w", p.Name, dlErr)
		}
		return nil
	default:
		log.ErrorContext(ctx, "transient failure; redelivery expected", "error", err.Error())
		return fmt.Errorf("%s: %w", p.Name, err)
	}
}

func (p *Processor) key(in event.Event) string { return p.Name + "_" + cloudevent.Key(in) }

// Once runs w for the delivery in exactly once in effect.
func (p *Processor) Once(ctx context.Context, in event.Event, w Work) error {
	if len(w.Prefetch) > 0 && w.Serialize == "" {
		return failure.Permanentf("consumer.Once: %s's work prefetches without a lease (Serialize unset)", p.Name)
	}
	key := p.key(in)
	// A delivery already processed is found by the transaction's own read
	// (CommitProcessed). A read before it is spent only where it saves an
	// outside call: before the call, under the lease for serialized work.
	// A serialized duplicate so takes the lease before it finds its record
	// (two requests more than a read first), which every first delivery
	// saves a read for: duplicates are the rare case.
	if w.effect != nil && w.Serialize == "" {
		if done, found, err := p.Journal.Processed(ctx, nil, key); err != nil {
			return err
		} else if found {
			return p.republish(ctx, done)
		}
	}
	var held *heldLease // serialized work's, released with the commit
	if w.Serialize != "" {
		var err error
		if held, err = p.lease(ctx, w.Serialize); err != nil {
			return err
		}
		defer held.release(ctx)
		// Processed already (or by a delivery that held the lease meanwhile),
		// or superseded by a newer version: one read for both, and for what
		// the effect reads.
		versions := w.Serialize
		if w.VersionOf != "" {
			versions = w.VersionOf
		}
		c, err := p.Journal.ProcessedOrClaim(ctx, key, p.Name+"_"+versions, w.Version, w.Prefetch...)
		switch {
		case err != nil:
			return err
		case c.Found:
			return p.republish(ctx, c.Done)
		case c.Superseded:
			w = Work{Apply: func(context.Context, store.Tx) ([]Outgoing, error) { return nil, nil }}
		case w.Again != nil:
			*w.Again = c.Again
		}
	}
	if w.effect != nil {
		apply, err := p.effect(ctx, w)
		if err != nil {
			return err
		}
		w.Apply = apply
	}
	faultpoint.Crash(CrashBeforeCommit)
	now := time.Now().UTC()
	rec := store.ProcessedRecord{
		Consumer: p.Name, EventID: in.ID(), Source: in.Source(), Type: in.Type(), ProcessedAt: now, ExpireAt: now.Add(processedTTL),
	}
	if w.effectOnly {
		return p.recordOnly(ctx, key, rec)
	}
	committed, fresh, err := p.Journal.CommitProcessed(ctx, key, rec, w.Reads, func(ctx context.Context, tx store.Tx) ([]store.OutgoingRecord, error) {
		out, err := w.Apply(ctx, tx)
		if err != nil {
			return nil, err
		}
		if err := held.deleteIn(tx); err != nil {
			return nil, err
		}
		return encode(out)
	})
	held.committed(err, fresh)
	if err != nil {
		return fmt.Errorf("consumer.Once: %w", err)
	}
	if !fresh {
		return p.republish(ctx, committed)
	}
	faultpoint.Crash(CrashAfterCommit)
	return p.publish(ctx, committed.Outgoing)
}

// recordOnly creates the dedupe record of effect-only work; the lease, if
// held, is released after it.
func (p *Processor) recordOnly(ctx context.Context, key string, rec store.ProcessedRecord) error {
	committed, fresh, err := p.Journal.CreateProcessed(ctx, key, rec)
	if err != nil {
		return fmt.Errorf("consumer.Once: %w", err)
	}
	if !fresh {
		return p.republish(ctx, committed)
	}
	faultpoint.Crash(CrashAfterCommit)
	return nil
}

// republish answers a delivery of an event already processed: the events
// it caused are published again (their publish may not have happened).
func (p *Processor) republish(ctx context.Context, done store.ProcessedRecord) error {
	logging.FromContext(ctx).InfoContext(ctx, "duplicate delivery; re-publishing recorded events", "events", len(done.Outgoing))
	return p.publish(ctx, done.Outgoing)
}

func encode(out []Outgoing) ([]store.OutgoingRecord, error) {
	recs := make([]store.OutgoingRecord, 0, len(out))
	for _, o := range out {
		b, err := json.Marshal(o.Event)
		if err != nil {
			return nil, failure.Permanentf("consumer: encode outgoing %s: %w", o.Event.ID(), err)
		}
		recs = append(recs, store.OutgoingRecord{Topic: o.Topic, Event: string(b)})
	}
	return recs, nil
}

// publish sends recorded events; a failure is transient: the redelivery
// finds the dedupe record and publishes them again.
func (p *Processor) publish(ctx context.Context, recs []store.OutgoingRecord) error {
	for _, r := range recs {
		var e event.Event
		if err := json.Unmarshal([]byte(r.Event), &e); err != nil {
			return fmt.Errorf("consumer.publish: decode recorded event: %w", err)
		}
		if err := p.Publisher.Publish(ctx, r.Topic, e); err != nil {
			return fmt.Errorf("consumer.publish: %w", err)
		}
	}
	return nil
}

// DeadLetter is what the dead_letters collection keeps of a failed delivery.
type DeadLetter = store.DeadLetter

// DeadLetter records a delivery no retry can fix and sends it to the
// dead-letter topic, where an operator can list and replay it.
func (p *Processor) DeadLetter(ctx context.Context, in event.Event, cause error) error {
	rec := p.deadLetterRecord(in, cause)
	if err := p.Journal.SaveDeadLetter(ctx, p.key(in), rec); err != nil {
		return fmt.Errorf("consumer.DeadLetter: record: %w", err)
	}
	if p.DeadLetterTopic == "" {
		telemetry.DeadLettered(ctx, p.Name, in.Type())
		return nil
	}
	if err := p.Publisher.Publish(ctx, p.DeadLetterTopic, in); err != nil {
		return fmt.Errorf("consumer.DeadLetter: publish: %w", err)
	}
	telemetry.DeadLettered(ctx, p.Name, in.Type())
	return nil
}

func (p *Processor) deadLetterRecord(in event.Event, cause error) DeadLetter {
	raw, err := json.Marshal(in)
	if err != nil {
		raw = in.Data()
	}
	return DeadLetter{
		Consumer: p.Name, EventID: in.ID(), Source: in.Source(), Type: in.Type(),
		Reason: failure.Scrub(cause.Error()), Event: string(raw), At: time.Now().UTC(), Topic: p.DeadLetterTopic,
	}
}

// DeadLetterUndecodable records a delivery that is no event at all: the
// raw body, under an id derived from it (so a redelivery is one record),
// in dead_letters and on the dead-letter topic.
func (p *Processor) DeadLetterUndecodable(ctx context.Context, body []byte, cause error) error {
	sum := sha256.Sum256(body)
	e := event.New()
	e.SetID("undecodable-" + hex.EncodeToString(sum[:16]))
	e.SetSource("//fulfillment/" + p.Name)
	e.SetType(UndecodableType)
	if err := e.SetData("application/octet-stream", body); err != nil {
		return fmt.Errorf("consumer.DeadLetterUndecodable: %w", err)
	}
	return p.DeadLetter(ctx, e, fmt.Errorf("undecodable delivery: %w", cause))
}

// UndecodableType is the type of the event a dead letter of an
// undecodable delivery is kept as; its data is the body as received.
const UndecodableType = "fulfillment.delivery.undecodable.v1"

// Base gives a consumer function its Handle and Close: embed it.
type Base struct {
	*Processor
	OnClose func() error
}

// Close releases what the function holds.
func (b *Base) Close() error {
	if b.OnClose == nil {
		return nil
	}
	return b.OnClose()
}
