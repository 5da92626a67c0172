// Package logging gives every function the same structured JSON logs, in the
// shape Cloud Logging reads (severity, message, trace), with the logger
// carried in the context.
package logging

import (
	"context"
	"io"
	"log/slog"
	"os"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

type loggerKey struct{}

// New returns a JSON logger writing to w in Cloud Logging's shape.
// project, when set, turns trace ids into Cloud Logging's full trace name.
func New(w io.Writer, function, level, project string) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(level))
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level:       lvl,
		ReplaceAttr: cloudLoggingKeys,
	})
	return slog.New(&traceHandler{Handler: h, project: project}).With("function", function)
}

// Default is a logger for a function, configured from LOG_LEVEL and GOOGLE_CLOUD_PROJECT.
func Default(function string) *slog.Logger {
	return New(os.Stdout, function, os.Getenv("LOG_LEVEL"), os.Getenv("GOOGLE_CLOUD_PROJECT"))
}

func cloudLoggingKeys(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.MessageKey:
		a.Key = "message"
	case slog.LevelKey:
		a.Key = "severity"
		if l, ok := a.Value.Any().(slog.Level); ok && l == slog.LevelWarn {
			a.Value = slog.StringValue("WARNING")
		}
	case slog.TimeKey:
		a.Key = "time"
	}
	return a
}

// WithContext stores logger in ctx.
func WithContext(ctx context.Context, logger *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, logger)
}

// FromContext returns the logger in ctx, or slog's default.
func FromContext(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// WithTrace continues the W3C trace context traceparent in ctx, as a remote
// parent: log lines written with ctx carry its trace id, and events and
// spans started from ctx belong to its trace. An invalid traceparent leaves
// ctx as it is.
func WithTrace(ctx context.Context, traceparent string) context.Context {
	return w3c.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// TraceParent returns the W3C traceparent of the span in ctx, or "".
func TraceParent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	w3c.Inject(ctx, c)
	return c["traceparent"]
}

var w3c = propagation.TraceContext{}

// traceHandler adds Cloud Logging's trace fields from the context's span,
// the OpenTelemetry one, so logs and traces join on the same ids.
type traceHandler struct {
	slog.Handler
	project string
}

// Cloud Logging's special fields that tie a log line to a trace.
const (
	traceField   = "logging.googleapis.com/trace"
	spanField    = "logging.googleapis.com/spanId"
	sampledField = "logging.googleapis.com/trace_sampled"
)

func (h *traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		traceID := sc.TraceID().String()
		if h.project != "" {
			traceID = "projects/" + h.project + "/traces/" + traceID
		}
		r.AddAttrs(slog.String(traceField, traceID), slog.String(spanField, sc.SpanID().String()),
			slog.Bool(sampledField, sc.IsSampled()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h *traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &traceHandler{Handler: h.Handler.WithAttrs(attrs), project: h.project}
}

func (h *traceHandler) WithGroup(name string) slog.Handler {
	return &traceHandler{Handler: h.Handler.WithGroup(name), project: h.project}
}

// TraceID returns the trace id of a traceparent, or "".
func TraceID(traceparent string) string {
	sc := trace.SpanContextFromContext(WithTrace(context.Background(), traceparent))
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}
