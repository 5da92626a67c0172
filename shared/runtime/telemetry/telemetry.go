// Package telemetry sets up OpenTelemetry for a function: traces that follow
// one purchase across every function (W3C trace context in the CloudEvents
// traceparent extension and in HTTP headers), the metrics operators alert
// on, and the exporters, chosen by the standard OTEL_* variables.
//
// Exporting is off unless configured: OTEL_TRACES_EXPORTER and
// OTEL_METRICS_EXPORTER are "none" by default and "otlp" to export, over
// OTEL_EXPORTER_OTLP_PROTOCOL ("http/protobuf", the default, or "grpc") to
// OTEL_EXPORTER_OTLP_ENDPOINT. Spans are made even with exporting off: their
// trace ids are what the logs carry and the next function continues.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Exporter and protocol values, as the OpenTelemetry specification names them.
const (
	ExporterNone = "none"
	ExporterOTLP = "otlp"
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// Config says where telemetry goes.
type Config struct {
	Traces         string // ExporterNone or ExporterOTLP
	Metrics        string // ExporterNone or ExporterOTLP
	TracesProtocol string // ProtocolHTTP or ProtocolGRPC
	MetricsProto   string // ProtocolHTTP or ProtocolGRPC
}

// ConfigFromEnv reads OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER and
// OTEL_EXPORTER_OTLP_PROTOCOL (or its per-signal variants). Endpoints,
// headers, timeouts, sampling and batching are read by the SDK itself.
func ConfigFromEnv() (Config, error) {
	proto := envOr("OTEL_EXPORTER_OTLP_PROTOCOL", ProtocolHTTP)
	c := Config{
		Traces:         envOr("OTEL_TRACES_EXPORTER", ExporterNone),
		Metrics:        envOr("OTEL_METRICS_EXPORTER", ExporterNone),
		TracesProtocol: envOr("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", proto),
		MetricsProto:   envOr("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", proto),
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	for name, v := range map[string]string{"OTEL_TRACES_EXPORTER": c.Traces, "OTEL_METRICS_EXPORTER": c.Metrics} {
		if v != ExporterNone && v != ExporterOTLP {
			errs = append(errs, fmt.Errorf("%s=%q: want %q or %q", name, v, ExporterOTLP, ExporterNone))
		}
	}
	for _, v := range []string{c.TracesProtocol, c.MetricsProto} {
		if v != ProtocolHTTP && v != ProtocolGRPC {
			errs = append(errs, fmt.Errorf("OTLP protocol %q: want %q or %q", v, ProtocolHTTP, ProtocolGRPC))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("telemetry config: %w", err)
	}
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// Setup installs the global tracer and meter providers and the W3C trace
// context propagator for service, configured from the environment, and
// sends OpenTelemetry's own errors (an unreachable collector, say) to logger.
// The returned shutdown flushes what is buffered; call it before exiting.
func Setup(ctx context.Context, service string, logger *slog.Logger) (shutdown func(context.Context) error, err error) {
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("telemetry", "error", err.Error())
	}))
	cfg, err := ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	tp, mp, err := providers(ctx, service, cfg)
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

// providers builds the tracer and meter providers cfg asks for.
func providers(ctx context.Context, service string, cfg Config) (*sdktrace.TracerProvider, *sdkmetric.MeterProvider, error) {
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, read last, win.
	res, err := resource.New(ctx, resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(semconv.ServiceName(service)), resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry.Setup: resource: %w", err)
	}
	tp, err := tracerProvider(ctx, cfg, res)
	if err != nil {
		return nil, nil, err
	}
	mp, err := meterProvider(ctx, cfg, res)
	if err != nil {
		_ = tp.Shutdown(ctx)
		return nil, nil, err
	}
	return tp, mp, nil
}

// tracerProvider makes spans whether or not it exports them; it exports
// only when asked to. Sampling follows OTEL_TRACES_SAMPLER when set, else
// sampler().
func tracerProvider(ctx context.Context, cfg Config, res *resource.Resource) (*sdktrace.TracerProvider, error) {
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if os.Getenv("OTEL_TRACES_SAMPLER") == "" {
		opts = append(opts, sdktrace.WithSampler(sampler()))
	}
	if cfg.Traces == ExporterOTLP {
		var exp sdktrace.SpanExporter
		var err error
		if cfg.TracesProtocol == ProtocolGRPC {
			exp, err = otlptracegrpc.New(ctx)
		} else {
			exp, err = otlptracehttp.New(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("telemetry.Setup: trace exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	return sdktrace.NewTracerProvider(opts...), nil
}

// meterProvider exports every OTEL_METRIC_EXPORT_INTERVAL (60 s by default)
// when asked to; without a reader, recording costs next to nothing.
func meterProvider(ctx context.Context, cfg Config, res *resource.Resource) (*sdkmetric.MeterProvider, error) {
	opts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	if cfg.Metrics == ExporterOTLP {
		var exp sdkmetric.Exporter
		var err error
		if cfg.MetricsProto == ProtocolGRPC {
			exp, err = otlpmetricgrpc.New(ctx)
		} else {
			exp, err = otlpmetrichttp.New(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("telemetry.Setup: metric exporter: %w", err)
		}
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
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
