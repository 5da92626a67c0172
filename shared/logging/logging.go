// Package logging gives every function the same structured JSON logs, in the
// shape Cloud Logging reads (severity, message, trace), with the logger
// carried in the context.
package logging

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
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

type traceKey struct{}

// WithTrace records the W3C traceparent in ctx: log lines written with ctx
// carry its trace id, and events built with ctx carry it on.
func WithTrace(ctx context.Context, traceparent string) context.Context {
	return context.WithValue(ctx, traceKey{}, traceparent)
}

// TraceParent returns the traceparent recorded in ctx, or "".
func TraceParent(ctx context.Context) string {
	tp, _ := ctx.Value(traceKey{}).(string)
	return tp
}

// traceHandler adds Cloud Logging's trace fields from the context's traceparent.
type traceHandler struct {
	slog.Handler
	project string
}

func (h *traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if tp, ok := ctx.Value(traceKey{}).(string); ok {
		if traceID, spanID, ok := parseTraceParent(tp); ok {
			trace := traceID
			if h.project != "" {
				trace = "projects/" + h.project + "/traces/" + traceID
			}
			r.AddAttrs(slog.String("logging.googleapis.com/trace", trace),
				slog.String("logging.googleapis.com/spanId", spanID))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h *traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &traceHandler{Handler: h.Handler.WithAttrs(attrs), project: h.project}
}

func (h *traceHandler) WithGroup(name string) slog.Handler {
	return &traceHandler{Handler: h.Handler.WithGroup(name), project: h.project}
}

// parseTraceParent splits "00-<trace id>-<span id>-<flags>".
func parseTraceParent(tp string) (traceID, spanID string, ok bool) {
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || len(parts[1]) != 32 || len(parts[2]) != 16 {
		return "", "", false
	}
	return parts[1], parts[2], true
}

// TraceID returns the trace id of a traceparent, or "".
func TraceID(traceparent string) string {
	id, _, _ := parseTraceParent(traceparent)
	return id
}
