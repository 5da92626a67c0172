package cloudevent

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"fulfillment/shared/runtime/logging"
)

func TestTraceContextRoundTripsThroughTheExtensions(t *testing.T) {
	t.Parallel()
	parent := logging.WithTrace(context.Background(), tp)
	sc := trace.SpanContextFromContext(parent)
	state, err := trace.ParseTraceState("vendor=abc")
	if err != nil {
		t.Fatal(err)
	}
	parent = trace.ContextWithRemoteSpanContext(parent, sc.WithTraceState(state))
	e := mustNew(t, parent, "traced")
	if e.Extensions()[TraceStateExtension] != "vendor=abc" {
		t.Errorf("tracestate extension = %v", e.Extensions()[TraceStateExtension])
	}

	got := trace.SpanContextFromContext(ExtractTrace(context.Background(), e))
	if !got.IsRemote() || got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() || got.TraceState().String() != "vendor=abc" {
		t.Errorf("extracted %v, want %v with its trace state", got, sc)
	}
	if untraced := mustNew(t, context.Background(), "untraced"); trace.SpanContextFromContext(ExtractTrace(context.Background(), untraced)).IsValid() {
		t.Error("an event without traceparent gave a trace context")
	}
}
