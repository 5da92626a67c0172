// Package checkoutwebhook is the payment provider's only way in: it checks
// the Stripe signature, stores the raw event once, and publishes it,
// normalized, to the provider-events topic. It answers 2xx only after the
// event is stored and published, so Stripe retries anything we could lose.
package checkoutwebhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/httpbody"
	"fulfillment/shared/runtime/logging"
)

// MaxBodyBytes caps a webhook body; Stripe events are a few KiB.
const MaxBodyBytes = 256 << 10

// Webhook event statuses in the webhook_events collection. A handled event
// is published first and written once after, as published, with no read
// before: one commit per accepted event, and the webhook answers 2xx only
// after both. The record's create (its not-exists precondition) is the
// dedupe: a repeated delivery finds the record there and counts itself (one
// increment). A repeat this process saw recorded is answered at once and
// counted with the other repeats of the next half second (counts.go); one
// it did not see has published the event again under the same id first,
// which the consumers dedupe (DESIGN.md rule 1). Only when the publish
// fails is the event written as stored, so it is kept while Stripe
// retries, and its retry publishes it and marks it published.
const (
	StatusStored    = "stored"    // kept; its publish failed or is not confirmed
	StatusPublished = "published" // on provider-events
	StatusIgnored   = "ignored"   // a type we do not act on
)

// Answers in the webhook's reply.
const (
	AnswerPublished = "published"
	AnswerDuplicate = "duplicate"
)

// Record is what webhook_events keeps of each Stripe event (store.WebhookEvent).
type Record = store.WebhookEvent

// Deps are what the webhook needs.
type Deps struct {
	Store     *store.Store
	Publisher pubsub.Publisher
	// Secrets are the endpoint signing secrets; several during a rotation.
	Secrets []string
	// Live is the Stripe mode events must come from: true for live mode.
	Live   bool
	Logger *slog.Logger
	Close  func() error
	// CountDelay is how long a seen repeat's delivery waits to be counted
	// (counts.go); zero is countDelay.
	CountDelay time.Duration
}

// Function is the checkout webhook.
type Function struct {
	d      Deps
	seen   *seen         // events seen recorded in a final status: a hint (seen.go)
	counts *repeatCounts // the deliveries of seen repeats, counted together (counts.go)
}

// New returns the webhook.
func New(d Deps) *Function {
	s := newSeen()
	return &Function{d: d, seen: s, counts: newRepeatCounts(d.Store.CountWebhookDeliveries, s.forget, d.Logger, d.CountDelay)}
}

// Close counts the repeats not counted yet and releases the clients.
func (f *Function) Close() error {
	f.counts.close()
	if f.d.Close == nil {
		return nil
	}
	return f.d.Close()
}

// ServeHTTP handles one webhook delivery.
func (f *Function) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, tp := traceContext(r)
	if r.Method != http.MethodPost {
		reply(w, http.StatusMethodNotAllowed, "error", "POST only")
		return
	}
	payload, err := httpbody.Read(w, r, MaxBodyBytes)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		f.d.Logger.WarnContext(ctx, "webhook body over the cap", "limit_bytes", MaxBodyBytes)
		reply(w, http.StatusRequestEntityTooLarge, "error", fmt.Sprintf("body over %d bytes", MaxBodyBytes))
		return
	case err != nil:
		reply(w, http.StatusBadRequest, "error", "unreadable body")
		return
	}
	if err := stripe.VerifySignature(payload, r.Header.Get("Stripe-Signature"), f.d.Secrets); err != nil {
		f.d.Logger.WarnContext(ctx, "webhook signature refused", "error", err.Error())
		reply(w, http.StatusUnauthorized, "error", "invalid signature")
		return
	}
	ev, err := stripe.ParseEvent(payload)
	if err != nil {
		f.d.Logger.WarnContext(ctx, "malformed webhook body", "error", err.Error())
		reply(w, http.StatusBadRequest, "error", "malformed event: "+err.Error())
		return
	}
	log := f.d.Logger.With("stripe_event_id", ev.ID, "stripe_type", ev.Type)
	if ev.Livemode != f.d.Live {
		// A secret of the other mode signed it: a test-mode payment must
		// never activate a real subscription, nor a live one a test stack.
		log.WarnContext(ctx, "webhook from the other Stripe mode refused", "livemode", ev.Livemode, "want_livemode", f.d.Live)
		reply(w, http.StatusBadRequest, "error", fmt.Sprintf("event livemode=%t, this endpoint takes livemode=%t only", ev.Livemode, f.d.Live))
		return
	}
	result, err := f.accept(ctx, ev, payload, tp)
	if err != nil {
		log.ErrorContext(ctx, "webhook not accepted; Stripe will retry", "error", err.Error())
		reply(w, http.StatusServiceUnavailable, "error", "temporarily unavailable")
		return
	}
	log.InfoContext(ctx, "webhook accepted", "result", result)
	reply(w, http.StatusOK, "status", result)
}

// accept publishes the event once and stores it; it is safe to repeat.
// A first delivery is published, then created with its not-exists
// precondition: no read before, since nearly every delivery is a first one.
// A repeat this process saw recorded skips the publish; one it did not see
// (it went to another instance, or raced its first delivery) publishes the
// event again under the same id, which the consumers dedupe, and finds the
// record when it creates it.
func (f *Function) accept(ctx context.Context, ev stripe.Event, payload []byte, tp string) (string, error) {
	if st, ok := f.seen.status(ev.ID); ok {
		// Recorded in a final status, as this process saw: count the
		// delivery with the others of the next moments, without reading
		// the record; once closing, count it now.
		if f.counts.add(ev.ID) {
			return answerOf(st), nil
		}
		err := f.d.Store.CountWebhookDelivery(ctx, ev.ID)
		switch {
		case err == nil:
			return answerOf(st), nil
		case !store.IsNotFound(err):
			return "", fmt.Errorf("checkoutwebhook.accept: %w", err)
		}
		f.seen.forget(ev.ID) // the record is gone: take the whole path
	}
	rec := newRecord(ev, payload, tp)
	if rec.Status == StatusIgnored {
		_, err := f.create(ctx, rec)
		return StatusIgnored, err
	}
	if err := f.publish(ctx, rec, ev); err != nil {
		// Keep the raw event while Stripe retries; its retry publishes it.
		rec.Status = StatusStored
		prior, serr := f.create(ctx, rec)
		switch {
		case serr != nil:
			f.d.Logger.WarnContext(ctx, "could not keep an unpublished webhook event", "error", serr.Error())
		case prior != nil && prior.Status != StatusStored:
			return answerOf(prior.Status), nil // published before: nothing is missing
		}
		return "", err
	}
	rec.Status = StatusPublished
	prior, err := f.create(ctx, rec)
	switch {
	case err != nil:
		return "", err
	case prior == nil:
		return AnswerPublished, nil
	case prior.Status == StatusStored:
		return f.markPublished(ctx, *prior), nil
	}
	return answerOf(prior.Status), nil
}

// answerOf is the answer to a repeat of an event recorded as st (final).
func answerOf(st string) string {
	if st == StatusIgnored {
		return StatusIgnored
	}
	return AnswerDuplicate
}

// markPublished records as published an event kept while its publish
// failed, now that a retry published it.
func (f *Function) markPublished(ctx context.Context, prior Record) string {
	prior.Status = StatusPublished
	if err := f.d.Store.SaveWebhookEvent(ctx, prior); err != nil {
		// Published already: a later retry only publishes the same id again.
		f.d.Logger.WarnContext(ctx, "could not mark webhook event published", "error", err.Error())
		return AnswerPublished
	}
	f.seen.add(prior.ID, prior.Status)
	return AnswerPublished
}

// newRecord is what webhook_events keeps of a first delivery.
func newRecord(ev stripe.Event, payload []byte, tp string) Record {
	internal, handled := stripe.InternalType(ev.Type)
	rec := Record{
		ID: ev.ID, StripeType: ev.Type, InternalType: internal, Livemode: ev.Livemode,
		Created: time.Unix(ev.Created, 0).UTC(), ReceivedAt: time.Now().UTC(),
		Status: StatusStored, Deliveries: 1, Raw: string(payload), TraceParent: tp,
	}
	if !handled {
		rec.Status = StatusIgnored
	}
	return rec
}

// create writes a first delivery's record. When the event is recorded
// already, the delivery is counted and the record found is returned.
func (f *Function) create(ctx context.Context, rec Record) (prior *Record, err error) {
	stored, created, err := f.d.Store.CreateWebhookEvent(ctx, rec)
	switch {
	case err != nil:
		return nil, fmt.Errorf("checkoutwebhook.create: %w", err)
	case !created:
		if stored.Status != StatusStored {
			f.seen.add(stored.ID, stored.Status)
		}
		return &stored, nil
	}
	if rec.Status != StatusStored {
		f.seen.add(rec.ID, rec.Status)
	}
	return nil, nil
}

// publish sends the normalized event. Its id is Stripe's event id, so a
// repeated publish is deduped downstream.
func (f *Function) publish(ctx context.Context, rec Record, ev stripe.Event) error {
	pe, err := stripe.Normalize(ev)
	if err != nil {
		pe.Provider, pe.ProviderEventID, pe.ProviderType = "stripe", ev.ID, ev.Type
		pe.Invalid = err.Error()
	}
	if rec.TraceParent != "" {
		ctx = logging.WithTrace(ctx, rec.TraceParent)
	}
	ce, err := cloudevent.New(ctx, ev.ID, catalog.SourceCheckoutWebhook, rec.InternalType, pe.SubscriptionID, pe)
	if err != nil {
		return err
	}
	if err := f.d.Publisher.Publish(ctx, catalog.TopicProviderEvents, ce); err != nil {
		return fmt.Errorf("checkoutwebhook.publish: %w", err)
	}
	return nil
}

// traceContext is the request's trace: the server span the entry point
// started (telemetry.Handler), else the caller's W3C trace, else a new one.
func traceContext(r *http.Request) (context.Context, string) {
	if tp := logging.TraceParent(r.Context()); tp != "" {
		return r.Context(), tp
	}
	tp := r.Header.Get("traceparent")
	if logging.TraceID(tp) == "" {
		var b [24]byte
		_, _ = rand.Read(b[:])
		tp = "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-01"
	}
	return logging.WithTrace(r.Context(), tp), tp
}

func reply(w http.ResponseWriter, code int, key, value string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{key: value})
}
