package telemetry

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func TestConfigIsOffByDefaultAndReadsTheStandardVariables(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr bool
	}{
		{"nothing set: off", nil, Config{Traces: "none", Metrics: "none", TracesProtocol: "http/protobuf", MetricsProto: "http/protobuf"}, false},
		{"otlp over gRPC for both", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			Config{Traces: "otlp", Metrics: "otlp", TracesProtocol: "grpc", MetricsProto: "grpc"}, false},
		{"per-signal protocol wins", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
			Config{Traces: "otlp", Metrics: "none", TracesProtocol: "http/protobuf", MetricsProto: "grpc"}, false},
		{"unknown exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, Config{}, true},
		{"unknown protocol", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, Config{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"} {
				t.Setenv(k, c.env[k])
			}
			got, err := ConfigFromEnv()
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if !c.wantErr && got != c.want {
				t.Errorf("config = %+v, want %+v", got, c.want)
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
