// Package telemetry sets up OpenTelemetry for a function: traces that follow
// one purchase across every function (W3C trace context in the CloudEvents
// traceparent extension and in HTTP headers), the metrics operators alert
// on, and the exporters, chosen by the standard OTEL_* variables through
// OpenTelemetry's autoexport.
//
// Exporting is off unless configured: OTEL_TRACES_EXPORTER and
// OTEL_METRICS_EXPORTER are "none" by default (autoexport's own default is
// "otlp") and "otlp" to export, over OTEL_EXPORTER_OTLP_PROTOCOL
// ("http/protobuf", the default, or "grpc") to OTEL_EXPORTER_OTLP_ENDPOINT.
// Spans are made even with exporting off: their trace ids are what the logs
// carry and the next function continues.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// spanExporter is the exporter OTEL_TRACES_EXPORTER names ("otlp", "console",
// "none"), with OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL and the SDK's other
// OTEL_EXPORTER_OTLP_* variables; nil when nothing is to be exported.
func spanExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	exp, err := autoexport.NewSpanExporter(ctx, autoexport.WithFallbackSpanExporter(noSpanExporter))
	if err != nil {
		return nil, fmt.Errorf("telemetry.Setup: trace exporter (OTEL_TRACES_EXPORTER): %w", err)
	}
	if exp == nil || autoexport.IsNoneSpanExporter(exp) {
		return nil, nil
	}
	return exp, nil
}

// metricReader is the reader OTEL_METRICS_EXPORTER names ("otlp", exporting
// every OTEL_METRIC_EXPORT_INTERVAL, "console", "prometheus", "none"); nil
// when nothing is to be exported.
func metricReader(ctx context.Context) (sdkmetric.Reader, error) {
	r, err := autoexport.NewMetricReader(ctx, autoexport.WithFallbackMetricReader(noMetricReader))
	if err != nil {
		return nil, fmt.Errorf("telemetry.Setup: metric exporter (OTEL_METRICS_EXPORTER): %w", err)
	}
	if r == nil || autoexport.IsNoneMetricReader(r) {
		return nil, nil
	}
	return r, nil
}

// noSpanExporter and noMetricReader are the fallbacks for an unset
// OTEL_TRACES_EXPORTER or OTEL_METRICS_EXPORTER: "none".
func noSpanExporter(context.Context) (sdktrace.SpanExporter, error) { return nil, nil }
func noMetricReader(context.Context) (sdkmetric.Reader, error)      { return nil, nil }

// Setup installs the global tracer and meter providers and the W3C trace
// context propagator for service, configured from the environment, and
// sends OpenTelemetry's own errors (an unreachable collector, say) to logger.
// The returned shutdown flushes what is buffered; call it before exiting.
func Setup(ctx context.Context, service string, logger *slog.Logger) (shutdown func(context.Context) error, err error) {
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("telemetry", "error", err.Error())
	}))
	tp, mp, err := providers(ctx, service)
	if err != nil {
		return nil, err
	}
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return func(ctx context.Context) error {
		return errors.Join(tp.Shutdown(ctx), mp.Shutdown(ctx))
	}, nil
}

// providers builds the tracer and meter providers the environment asks for.
func providers(ctx context.Context, service string) (*sdktrace.TracerProvider, *sdkmetric.MeterProvider, error) {
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, read last, win.
	res, err := resource.New(ctx, resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(semconv.ServiceName(service)), resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry.Setup: resource: %w", err)
	}
	tp, err := tracerProvider(ctx, res)
	if err != nil {
		return nil, nil, err
	}
	mp, err := meterProvider(ctx, res)
	if err != nil {
		_ = tp.Shutdown(ctx)
		return nil, nil, err
	}
	return tp, mp, nil
}

// tracerProvider makes spans whether or not it exports them; it exports
// only when asked to. Sampling follows OTEL_TRACES_SAMPLER when set, else
// sampler().
func tracerProvider(ctx context.Context, res *resource.Resource) (*sdktrace.TracerProvider, error) {
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if os.Getenv("OTEL_TRACES_SAMPLER") == "" {
		opts = append(opts, sdktrace.WithSampler(sampler()))
	}
	exp, err := spanExporter(ctx)
	if err != nil {
		return nil, err
	}
	if exp != nil {
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	return sdktrace.NewTracerProvider(opts...), nil
}

// meterProvider exports when asked to; without a reader, recording costs
// next to nothing.
func meterProvider(ctx context.Context, res *resource.Resource) (*sdkmetric.MeterProvider, error) {
	opts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	r, err := metricReader(ctx)
	if err != nil {
		return nil, err
	}
	if r != nil {
		opts = append(opts, sdkmetric.WithReader(r))
	}
	return sdkmetric.NewMeterProvider(opts...), nil
}

// sampler is the SDK's default (follow the parent; sample every root) but
// for a root client span: a call made outside any request, such as the
// Pub/Sub client's batched publish RPCs (run on a background context), which
// would otherwise each be a trace of one span.
func sampler() sdktrace.Sampler { return sdktrace.ParentBased(noBackgroundCalls{}) }

type noBackgroundCalls struct{}

func (noBackgroundCalls) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if p.Kind == trace.SpanKindClient {
		return sdktrace.SamplingResult{Decision: sdktrace.Drop, Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState()}
	}
	return sdktrace.AlwaysSample().ShouldSample(p)
}

func (noBackgroundCalls) Description() string { return "NoBackgroundCalls" }
