package telemetry

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func TestExportIsOffByDefaultAndFollowsTheStandardVariables(t *testing.T) {
	cases := []struct {
		name            string
		env             map[string]string
		traces, metrics bool
		wantErr         bool
	}{
		{"nothing set: off", nil, false, false, false},
		{"none: off", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}, false, false, false},
		{"otlp over gRPC for both", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true, true, false},
		{"traces alone, per-signal protocol", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, true, false, false},
		{"unknown exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, false, true},
		{"unknown protocol", map[string]string{"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, false, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"} {
				t.Setenv(k, c.env[k])
			}
			ctx := context.Background()
			exp, errT := spanExporter(ctx)
			r, errM := metricReader(ctx)
			if gotErr := errT != nil || errM != nil; gotErr != c.wantErr {
				t.Fatalf("errors = %v, %v; want an error: %v", errT, errM, c.wantErr)
			}
			if c.wantErr {
				return
			}
			if (exp != nil) != c.traces || (r != nil) != c.metrics {
				t.Errorf("span exporter %T, metric reader %T; want traces %v, metrics %v", exp, r, c.traces, c.metrics)
			}
			if exp != nil {
				_ = exp.Shutdown(ctx)
			}
			if r != nil {
				_ = r.Shutdown(ctx)
			}
		})
	}
}

func TestSamplerDropsOnlyBackgroundClientCalls(t *testing.T) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler()))
	defer tp.Shutdown(context.Background())
	tr := tp.Tracer("test")
	_, background := tr.Start(context.Background(), "Publish", trace.WithSpanKind(trace.SpanKindClient))
	reqCtx, request := tr.Start(context.Background(), "POST checkout-webhook", trace.WithSpanKind(trace.SpanKindServer))
	_, call := tr.Start(reqCtx, "HTTP POST", trace.WithSpanKind(trace.SpanKindClient))
	_, delivery := tr.Start(context.Background(), "process x", trace.WithSpanKind(trace.SpanKindConsumer))
	for _, c := range []struct {
		name string
		span trace.Span
		want bool
	}{{"background client call", background, false}, {"request", request, true}, {"call within a request", call, true}, {"delivery", delivery, true}} {
		if got := c.span.SpanContext().IsSampled(); got != c.want {
			t.Errorf("%s sampled = %v, want %v", c.name, got, c.want)
		}
		if !c.span.SpanContext().IsValid() {
			t.Errorf("%s has no trace id: logs could not carry it", c.name)
		}
	}
}
