// Package cloudevent builds the CloudEvents the functions exchange and moves
// them in and out of Pub/Sub messages (the CloudEvents Pub/Sub binding, binary
// mode: "ce-" attributes, the data as the message body).
package cloudevent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/runtime/failure"
)

// PubSubMessagePublished is the type GCP gives a Pub/Sub message delivered as a CloudEvent.
const PubSubMessagePublished = "google.cloud.pubsub.topic.v1.messagePublished"

// TraceParentExtension carries the W3C trace context across functions.
const TraceParentExtension = "traceparent"

// New builds a JSON CloudEvent. The caller picks the id: derive it from the
// input with DerivedID so that a redelivery produces the same event.
func New(ctx context.Context, id, source, typ, subject string, data any) (event.Event, error) {
	e := event.New()
	e.SetID(id)
	e.SetSource(source)
	e.SetType(typ)
	e.SetTime(time.Now().UTC())
	if subject != "" {
		e.SetSubject(subject)
	}
	InjectTrace(ctx, &e)
	if err := e.SetData(event.ApplicationJSON, data); err != nil {
		return event.Event{}, fmt.Errorf("cloudevent.New: %w", err)
	}
	if err := e.Validate(); err != nil {
		return event.Event{}, fmt.Errorf("cloudevent.New: %w", err)
	}
	return e, nil
}

// DerivedID is a deterministic id for the event that input causes: the same
// input (by source and id) and purpose always give the same id.
func DerivedID(input event.Event, purpose string) string {
	sum := sha256.Sum256([]byte(input.Source() + "\x00" + input.ID() + "\x00" + purpose))
	return hex.EncodeToString(sum[:16])
}

// Key is a stable, Firestore-safe key for an event: its source and id hashed.
func Key(e event.Event) string {
	sum := sha256.Sum256([]byte(e.Source() + "\x00" + e.ID()))
	return hex.EncodeToString(sum[:16])
}

// DecodeData decodes the event's JSON data into v; a failure is permanent.
func DecodeData(e event.Event, v any) error {
	if err := json.Unmarshal(e.Data(), v); err != nil {
		return failure.Permanentf("decode %s %s: %w", e.Type(), e.ID(), err)
	}
	return nil
}

// ToMessage encodes e in binary mode for Pub/Sub.
func ToMessage(e event.Event) (data []byte, attrs map[string]string) {
	attrs = map[string]string{
		"ce-specversion": e.SpecVersion(),
		"ce-id":          e.ID(),
		"ce-source":      e.Source(),
		"ce-type":        e.Type(),
	}
	if ct := e.DataContentType(); ct != "" {
		attrs["content-type"] = ct
	}
	if s := e.Subject(); s != "" {
		attrs["ce-subject"] = s
	}
	if !e.Time().IsZero() {
		attrs["ce-time"] = e.Time().UTC().Format(time.RFC3339Nano)
	}
	for k, v := range e.Extensions() {
		attrs["ce-"+k] = fmt.Sprint(v)
	}
	return e.Data(), attrs
}

// Message is a Pub/Sub message as a push delivery or messagePublished event carries it.
type Message struct {
	Data        []byte            `json:"data"`
	Attributes  map[string]string `json:"attributes"`
	MessageID   string            `json:"messageId"`
	PublishTime time.Time         `json:"publishTime"`
}

// FromMessage decodes a Pub/Sub message. A message with CloudEvent attributes
// gives that event; any other message (a Cloud Scheduler tick, say) becomes a
// messagePublished event, as GCP delivers it, whose id is the message id so it
// can still be deduped.
func FromMessage(m Message, topic string) (event.Event, error) {
	e := event.New()
	if m.Attributes["ce-id"] == "" {
		e.SetID(m.MessageID)
		e.SetSource("//pubsub.googleapis.com/" + topic)
		e.SetType(PubSubMessagePublished)
		e.SetTime(m.PublishTime)
		_ = e.SetData(event.ApplicationJSON, pushEnvelope{Message: &m})
		return e, validate(e)
	}
	for k, v := range m.Attributes {
		name, ok := strings.CutPrefix(k, "ce-")
		switch {
		case !ok:
			if k == "content-type" {
				e.SetDataContentType(v)
			}
		case name == "specversion":
		case name == "id":
			e.SetID(v)
		case name == "source":
			e.SetSource(v)
		case name == "type":
			e.SetType(v)
		case name == "subject":
			e.SetSubject(v)
		case name == "time":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return e, failure.Permanentf("cloudevent.FromMessage: bad ce-time %q", v)
			}
			e.SetTime(t)
		default:
			e.SetExtension(name, v)
		}
	}
	e.DataEncoded = m.Data
	return e, validate(e)
}

func validate(e event.Event) error {
	if err := e.Validate(); err != nil {
		return failure.Permanentf("cloudevent: invalid event: %w", err)
	}
	return nil
}

// pushEnvelope is the body of a Pub/Sub push delivery, and the data of a
// messagePublished CloudEvent (Eventarc).
type pushEnvelope struct {
	Message      *Message `json:"message"`
	Subscription string   `json:"subscription"`
	// DeliveryAttempt counts deliveries of this message (1 for the first);
	// Pub/Sub sets it on subscriptions with a dead-letter policy.
	DeliveryAttempt int `json:"deliveryAttempt,omitempty"`
}

// Unwrap returns the event a delivery carries: a messagePublished event whose
// message holds a CloudEvent is opened to it; any other event, a plain Pub/Sub
// message included, is returned as is.
func Unwrap(e event.Event) (event.Event, error) {
	if e.Type() != PubSubMessagePublished {
		return e, nil
	}
	m, err := PubSubMessage(e)
	if err != nil {
		return e, err
	}
	if m.Attributes["ce-id"] == "" {
		return e, nil
	}
	return FromMessage(m, topicOf(e.Source()))
}

// PubSubMessage returns the Pub/Sub message inside a messagePublished event.
func PubSubMessage(e event.Event) (Message, error) {
	var env pushEnvelope
	if err := json.Unmarshal(e.Data(), &env); err != nil || env.Message == nil {
		return Message{}, failure.Permanentf("cloudevent: %s %s has no Pub/Sub message in its data", e.Type(), e.ID())
	}
	if env.Message.MessageID == "" {
		env.Message.MessageID = e.ID()
	}
	return *env.Message, nil
}

// topicOf takes "projects/P/topics/T" out of a source such as
// "//pubsub.googleapis.com/projects/P/topics/T".
func topicOf(source string) string {
	if i := strings.Index(source, "projects/"); i >= 0 {
		return source[i:]
	}
	return source
}

// ParsePush decodes a raw Pub/Sub push body into the event it carries.
func ParsePush(body []byte) (event.Event, error) {
	e, _, err := ParsePushDelivery(body)
	return e, err
}

// Delivery is what a Pub/Sub push says of itself: the message it carries
// and which delivery of that message it is (0 when Pub/Sub did not say).
// Pub/Sub counts attempts per message: two messages carrying one event (a
// re-publish) are retried, and dead-lettered, each on its own.
type Delivery struct {
	MessageID string
	Attempt   int
}

// ParsePushDelivery is ParsePush that also returns what the push says of
// the delivery.
func ParsePushDelivery(body []byte) (event.Event, Delivery, error) {
	var env pushEnvelope
	if err := json.Unmarshal(body, &env); err != nil || env.Message == nil {
		return event.Event{}, Delivery{}, failure.Permanentf("cloudevent.ParsePush: not a Pub/Sub push body")
	}
	// The push body names the subscription, not the topic.
	e, err := FromMessage(*env.Message, env.Subscription)
	return e, Delivery{MessageID: env.Message.MessageID, Attempt: env.DeliveryAttempt}, err
}

type deliveryKey struct{}

// WithDelivery records in ctx which message and which delivery of it this is.
func WithDelivery(ctx context.Context, d Delivery) context.Context {
	if d == (Delivery{}) {
		return ctx
	}
	return context.WithValue(ctx, deliveryKey{}, d)
}

// DeliveryOf is the delivery recorded in ctx, zero when unknown.
func DeliveryOf(ctx context.Context) Delivery {
	d, _ := ctx.Value(deliveryKey{}).(Delivery)
	return d
}

// TraceParentOf reads the traceparent extension of e, or "".
func TraceParentOf(e event.Event) string {
	v, ok := e.Extensions()[TraceParentExtension]
	if !ok {
		return ""
	}
	return fmt.Sprint(v)
}
