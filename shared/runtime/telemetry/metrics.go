package telemetry

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"fulfillment/shared/runtime/failure"
)

// Metric names; dashboards and alert policies refer to them.
const (
	MetricEventsHandled   = "fulfillment.events.handled"
	MetricEventsFailed    = "fulfillment.events.failed"
	MetricEventDuration   = "fulfillment.event.duration"
	MetricDeadLetters     = "fulfillment.dead_letters"
	MetricPaymentFailures = "fulfillment.payment.failures"
	MetricOutboundCalls   = "fulfillment.outbound.calls"
)

// Attribute keys on the metrics (OpenTelemetry semantic names where one exists).
const (
	AttrFunction  = attribute.Key("faas.name")
	AttrEventType = attribute.Key("cloudevents.event_type")
	AttrErrorType = attribute.Key("error.type")   // transient or permanent
	AttrPeer      = attribute.Key("peer.service") // gitlab, salesforce, ...
	AttrOperation = attribute.Key("operation")
	AttrOutcome   = attribute.Key("outcome") // ok, transient or permanent
)

// Outcomes of a piece of work, as failure classifies errors.
const (
	OutcomeOK        = "ok"
	OutcomeTransient = "transient"
	OutcomePermanent = "permanent"
)

// Outcome classifies err: nil is ok; failure decides the rest.
func Outcome(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case failure.IsPermanent(err):
		return OutcomePermanent
	default:
		return OutcomeTransient
	}
}

type instruments struct {
	handled, failed, deadLetters, paymentFailures, calls metric.Int64Counter
	duration                                             metric.Float64Histogram
}

// meter's instruments come from the global meter provider, which forwards
// them to the one Setup installs, whenever that happens.
var meter = sync.OnceValue(func() *instruments {
	m := otel.Meter("fulfillment")
	var i instruments
	i.handled = counter(m, MetricEventsHandled, "Deliveries processed successfully, per function and event type.")
	i.failed = counter(m, MetricEventsFailed, "Deliveries that failed, per function, event type and error type (transient: redelivered; permanent: dead-lettered).")
	i.deadLetters = counter(m, MetricDeadLetters, "Deliveries recorded as dead letters and sent to the dead-letter topic.")
	i.paymentFailures = counter(m, MetricPaymentFailures, "Failed payments reported by the payment provider.")
	i.calls = counter(m, MetricOutboundCalls, "Calls to outside systems (provisioning, CRM), per outcome.")
	h, err := m.Float64Histogram(MetricEventDuration, metric.WithUnit("s"),
		metric.WithDescription("Time to handle one delivery, per function, event type and outcome."),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
	report(err)
	i.duration = h
	return &i
})

func counter(m metric.Meter, name, desc string) metric.Int64Counter {
	c, err := m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit("{event}"))
	report(err)
	return c
}

// report hands an instrument error to OpenTelemetry's error handler; the
// instrument returned with it still works (it records nothing).
func report(err error) {
	if err != nil {
		otel.Handle(err)
	}
}

// EventDone records one delivery's outcome and how long it took.
func EventDone(ctx context.Context, function, eventType string, took time.Duration, err error) {
	m := meter()
	outcome := Outcome(err)
	base := []attribute.KeyValue{AttrFunction.String(function), AttrEventType.String(eventType)}
	m.duration.Record(ctx, took.Seconds(), metric.WithAttributes(append(base, AttrOutcome.String(outcome))...))
	if err == nil {
		m.handled.Add(ctx, 1, metric.WithAttributes(base...))
		return
	}
	m.failed.Add(ctx, 1, metric.WithAttributes(append(base, AttrErrorType.String(outcome))...))
}

// DeadLettered counts a delivery sent to the dead letters.
func DeadLettered(ctx context.Context, function, eventType string) {
	meter().deadLetters.Add(ctx, 1, metric.WithAttributes(AttrFunction.String(function), AttrEventType.String(eventType)))
}

// PaymentFailed counts a failed payment the provider reported.
func PaymentFailed(ctx context.Context, function string) {
	meter().paymentFailures.Add(ctx, 1, metric.WithAttributes(AttrFunction.String(function)))
}

// CallDone counts a call to an outside system (peer: gitlab, salesforce)
// by its outcome.
func CallDone(ctx context.Context, peer, operation string, err error) {
	meter().calls.Add(ctx, 1, metric.WithAttributes(AttrPeer.String(peer), AttrOperation.String(operation), AttrOutcome.String(Outcome(err))))
}
