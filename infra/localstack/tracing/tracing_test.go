package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/failure"
	"fulfillment/shared/runtime/logging"
	"fulfillment/shared/runtime/telemetry"
)

// TestReceiverKeepsATraceExportedOverOTLP sends one trace over three hops
// through the real OTLP/HTTP exporter: the webhook's server span, then two
// deliveries continued from the events' traceparent; the first event is
// built under a client library's span, as outgoing events are built inside
// a Firestore transaction. It reads the trace back and renders it.
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

	var first event.Event
	webhook := telemetry.Handler(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		txCtx, tx := tp.Tracer("cloud.google.com/go/firestore").Start(req.Context(), "RunTransaction")
		defer tx.End()
		if first, err = cloudevent.New(txCtx, "evt-1", "//test", "test.paid.v1", "sub-1", map[string]string{}); err != nil {
			t.Error(err)
		}
	}), "checkout-webhook")
	webhook.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", nil))
	traceID := logging.TraceID(cloudevent.TraceParentOf(first))

	hop1, d1 := telemetry.StartDelivery(ctx, "payment-result", first)
	second, err := cloudevent.New(hop1, "evt-2", "//test", "test.activated.v1", "sub-1", map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	d1.End(hop1, nil)
	hop2, d2 := telemetry.StartDelivery(ctx, "provisioning", second)
	d2.End(hop2, failure.Permanentf("namespace unknown"))
	hop3, d3 := telemetry.StartDelivery(ctx, "crm-push", first)
	d3.Ignore()
	d3.End(hop3, nil)

	spans := r.Trace(traceID)
	if len(spans) != 5 {
		t.Fatalf("received %d spans of trace %s, want 5: %+v", len(spans), traceID, spans)
	}
	if roots := Roots(spans); len(roots) != 1 || roots[0].Name != "POST checkout-webhook" || roots[0].Kind != "server" {
		t.Fatalf("roots %+v, want the webhook's server span only", roots)
	}
	if ids := r.TracesOf("sub-1"); len(ids) != 1 || ids[0] != traceID {
		t.Errorf("traces of sub-1 = %v, want [%s]", ids, traceID)
	}
	if n := r.Spans(); n != 5 {
		t.Errorf("%d spans received in all, want 5", n)
	}

	for _, c := range []struct {
		all       bool
		want, not []string
	}{
		{all: false, want: []string{
			"trace " + traceID + ": 5 spans, 1 services",
			"└─ [local] POST checkout-webhook",
			"\n   ├─ [local] process test.paid.v1",
			"\n   │  └─ [local] process test.activated.v1",
			"ERROR: permanent",
			"\n   └─ [local] process test.paid.v1", "(type not handled here)",
		}, not: []string{"RunTransaction"}},
		{all: true, want: []string{
			"└─ [local] POST checkout-webhook",
			"\n   └─ [local] RunTransaction",
			"\n      └─ [local] process test.paid.v1",
		}},
	} {
		var out strings.Builder
		Render(&out, spans, c.all)
		for _, w := range c.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("all=%v: tree lacks %q:\n%s", c.all, w, out.String())
			}
		}
		for _, n := range c.not {
			if strings.Contains(out.String(), n) {
				t.Errorf("all=%v: tree shows %q:\n%s", c.all, n, out.String())
			}
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
	if n := r.Spans(); n != 0 {
		t.Errorf("%d spans kept of refused exports, want 0", n)
	}
}
