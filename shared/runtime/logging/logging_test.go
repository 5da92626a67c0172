package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func TestLogLineHasCloudLoggingShape(t *testing.T) {
	var buf bytes.Buffer
	logger := New(&buf, "provisioning", "debug", "demo")
	ctx := WithTrace(context.Background(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	logger.WarnContext(ctx, "provisioned", "subscription_id", "sub-1")

	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not JSON: %v: %s", err, buf.String())
	}
	want := map[string]any{
		"severity":                      "WARNING",
		"message":                       "provisioned",
		"function":                      "provisioning",
		"subscription_id":               "sub-1",
		"logging.googleapis.com/trace":  "projects/demo/traces/4bf92f3577b34da6a3ce929d0e0e4736",
		"logging.googleapis.com/spanId": "00f067aa0ba902b7",
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v", k, line[k], v)
		}
	}
}

func TestLogLineCarriesTheOpenTelemetrySpan(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("test").Start(context.Background(), "deliver")
	defer span.End()
	var buf bytes.Buffer
	New(&buf, "crm-push", "info", "").InfoContext(ctx, "upserted")

	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not JSON: %v: %s", err, buf.String())
	}
	sc := span.SpanContext()
	if line["logging.googleapis.com/trace"] != sc.TraceID().String() || line["logging.googleapis.com/spanId"] != sc.SpanID().String() ||
		line["logging.googleapis.com/trace_sampled"] != true {
		t.Errorf("log line %v does not carry span %s/%s", line, sc.TraceID(), sc.SpanID())
	}
	if got := TraceParent(ctx); TraceID(got) != sc.TraceID().String() {
		t.Errorf("TraceParent = %q, not the span's trace", got)
	}
}

func TestLogLineWithoutTraceHasNoTraceFields(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, "renewal", "info", "demo").InfoContext(context.Background(), "tick")
	if bytes.Contains(buf.Bytes(), []byte("logging.googleapis.com/trace")) {
		t.Errorf("trace fields without a trace: %s", buf.String())
	}
}
