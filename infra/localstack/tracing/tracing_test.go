package tracing

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"fulfillment/shared/cloudevent"
	"fulfillment/shared/failure"
	"fulfillment/shared/telemetry"
)

// TestReceiverKeepsATraceExportedOverOTLP sends one trace over three hops
// (a server span, then two deliveries continued from the events'
// traceparent) through the real OTLP/HTTP exporter, and reads it back.
func TestReceiverKeepsATraceExportedOverOTLP(t *testing.T) {
	r, err := StartReceiver("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(r.URL()+ExportPath))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("local"))))
	defer tp.Shutdown(ctx)
	otel.SetTracerProvider(tp)

	rootCtx, root := tp.Tracer("test").Start(ctx, "POST checkout-webhook", trace.WithSpanKind(trace.SpanKindServer))
	first, err := cloudevent.New(rootCtx, "evt-1", "//test", "test.paid.v1", "sub-1", map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	hop1, d1 := telemetry.StartDelivery(ctx, "payment-result", first)
	second, err := cloudevent.New(hop1, "evt-2", "//test", "test.activated.v1", "sub-1", map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	d1.End(hop1, nil)
	hop2, d2 := telemetry.StartDelivery(ctx, "provisioning", second)
	d2.End(hop2, failure.Permanentf("namespace unknown"))
	root.End()

	traceID := root.SpanContext().TraceID().String()
	spans := r.Trace(traceID)
	if len(spans) != 3 {
		t.Fatalf("received %d spans of trace %s, want 3: %+v", len(spans), traceID, spans)
	}
	if roots := Roots(spans); len(roots) != 1 || roots[0].Name != "POST checkout-webhook" {
		t.Fatalf("roots %+v, want the server span only", roots)
	}
	if ids := r.TracesOf("sub-1"); len(ids) != 1 || ids[0] != traceID {
		t.Errorf("traces of sub-1 = %v, want [%s]", ids, traceID)
	}

	var out strings.Builder
	Render(&out, spans)
	want := []string{
		"trace " + traceID + ": 3 spans, 1 services",
		"└─ [local] POST checkout-webhook",
		"   └─ [local] process test.paid.v1",
		"      └─ [local] process test.activated.v1",
		"ERROR: permanent",
	}
	got := out.String()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("tree lacks %q:\n%s", w, got)
		}
	}
}

func TestReceiverRefusesWhatIsNotOTLPProtobuf(t *testing.T) {
	r, err := StartReceiver("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for ct, want := range map[string]int{"application/json": 415, "application/x-protobuf": 400} {
		resp, err := http.Post(r.URL()+ExportPath, ct, strings.NewReader("{not protobuf"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s answered %d, want %d", ct, resp.StatusCode, want)
		}
	}
}
