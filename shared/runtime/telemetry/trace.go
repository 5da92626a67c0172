package telemetry

import (
	"context"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"fulfillment/shared/runtime/cloudevent"
)

// Span attributes of a delivery (OpenTelemetry's CloudEvents conventions).
const (
	AttrEventID      = attribute.Key("cloudevents.event_id")
	AttrEventSource  = attribute.Key("cloudevents.event_source")
	AttrEventSubject = attribute.Key("cloudevents.event_subject")
	AttrIgnored      = attribute.Key("fulfillment.ignored")
)

// w3c propagates over HTTP whatever the global propagator is: the trace
// must cross every hop even where Setup was not called (tests).
var w3c = propagation.TraceContext{}

func tracer() trace.Tracer { return otel.Tracer("fulfillment") }

// Delivery is the telemetry of one event delivery: its span and its clock.
type Delivery struct {
	span      trace.Span
	function  string
	eventType string
	start     time.Time
	ignored   bool
}

// StartDelivery starts the span of function handling e, as a child of the
// trace e carries in its traceparent extension (or of the trace already in
// ctx, from the request headers, when e carries none). Log lines written
// with the returned context carry the span's trace id.
func StartDelivery(ctx context.Context, function string, e event.Event) (context.Context, *Delivery) {
	ctx = cloudevent.ExtractTrace(ctx, e)
	attrs := []attribute.KeyValue{
		AttrFunction.String(function), AttrEventType.String(e.Type()),
		AttrEventID.String(e.ID()), AttrEventSource.String(e.Source()),
	}
	if s := e.Subject(); s != "" {
		attrs = append(attrs, AttrEventSubject.String(s))
	}
	ctx, span := tracer().Start(ctx, "process "+e.Type(), trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
	return ctx, &Delivery{span: span, function: function, eventType: e.Type(), start: time.Now()}
}

// Ignore marks a delivery whose type this function does not handle: it is
// acknowledged, its span says so, and it is not counted as handled.
func (d *Delivery) Ignore() {
	d.ignored = true
	d.span.SetAttributes(AttrIgnored.Bool(true))
}

// End records the delivery's outcome (err from the handler: nil, transient
// or permanent) on its span and in the metrics, and ends the span.
func (d *Delivery) End(ctx context.Context, err error) {
	defer d.span.End()
	if err != nil {
		d.span.RecordError(err)
		d.span.SetStatus(codes.Error, Outcome(err))
		d.span.SetAttributes(AttrErrorType.String(Outcome(err)))
	}
	if d.ignored {
		return
	}
	EventDone(ctx, d.function, d.eventType, time.Since(d.start), err)
}

// Transport wraps base (http.DefaultTransport when nil) so every outgoing
// request gets a client span and carries the trace in its traceparent header.
func Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return otelhttp.NewTransport(base, otelhttp.WithPropagators(w3c))
}

// HTTPClient is an http.Client for calls to outside systems, traced.
func HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: Transport(nil)}
}

// Handler serves h inside a server span named operation that continues the
// caller's trace from its traceparent header (or starts one), and records
// OpenTelemetry's HTTP server metrics.
func Handler(h http.Handler, operation string) http.Handler {
	return otelhttp.NewHandler(h, operation, otelhttp.WithPropagators(w3c),
		otelhttp.WithSpanNameFormatter(func(op string, r *http.Request) string { return r.Method + " " + op }))
}

// ContinueTrace serves h with the caller's traceparent header, if any, as
// the request context's remote parent, without a span of its own: CloudEvent
// functions start their span per delivery, from the event's own traceparent.
func ContinueTrace(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := w3c.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}
