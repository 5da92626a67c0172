package entrypoint

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"fulfillment/shared/runtime/logging"
)

const callerTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// TestHTTPFunctionGetsAServerSpanInTheCallersTrace: the webhook's requests
// continue the caller's trace in a span of their own.
func TestHTTPFunctionGetsAServerSpanInTheCallersTrace(t *testing.T) {
	otel.SetTracerProvider(sdktrace.NewTracerProvider())
	var seen trace.SpanContext
	fn := plainFunction{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = trace.SpanContextFromContext(r.Context())
	})}
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req.Header.Set("traceparent", callerTrace)
	instrument("checkout-webhook", fn).ServeHTTP(httptest.NewRecorder(), req)

	if seen.TraceID().String() != logging.TraceID(callerTrace) || seen.SpanID().String() == "00f067aa0ba902b7" || seen.IsRemote() {
		t.Errorf("handler ran in span %v; want a local span of trace %s", seen, logging.TraceID(callerTrace))
	}
}

// TestEventFunctionGetsTheCallersTraceWithoutASpan: CloudEvents functions
// start their span per delivery, so the entry point only passes the header on.
func TestEventFunctionGetsTheCallersTraceWithoutASpan(t *testing.T) {
	var seen trace.SpanContext
	handle := func(ctx context.Context, _ event.Event) error {
		seen = trace.SpanContextFromContext(ctx)
		return nil
	}
	fn := Serve(&eventFuncWith{handle: handle}, discard)
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(pushBody(newEvent(t, "traced"), "1")))
	req.Header.Set("traceparent", callerTrace)
	rr := httptest.NewRecorder()
	instrument("payment-result", fn).ServeHTTP(rr, req)

	if rr.Code != http.StatusNoContent || !seen.IsRemote() || logging.TraceParent(trace.ContextWithSpanContext(context.Background(), seen)) != callerTrace {
		t.Errorf("answered %d; handler saw %v, want the caller's remote context %s", rr.Code, seen, callerTrace)
	}
}

type plainFunction struct{ http.Handler }

func (plainFunction) Close() error { return nil }

type eventFuncWith struct {
	handle func(context.Context, event.Event) error
}

func (e *eventFuncWith) Handle(ctx context.Context, ev event.Event) error { return e.handle(ctx, ev) }
func (e *eventFuncWith) Close() error                                     { return nil }
