package cloudevent

import (
	"context"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/propagation"
)

// TraceStateExtension carries the W3C tracestate next to traceparent.
const TraceStateExtension = "tracestate"

// w3c is the propagator for events: the CloudEvents distributed tracing
// extension is the W3C trace context, whatever the process's global
// propagator is.
var w3c = propagation.TraceContext{}

// InjectTrace writes the span context of ctx into e's traceparent and
// tracestate extensions, so the function receiving e continues the trace.
func InjectTrace(ctx context.Context, e *event.Event) {
	w3c.Inject(ctx, extensionCarrier{e})
}

// ExtractTrace returns ctx carrying e's trace context as the remote parent,
// or ctx unchanged when e carries none.
func ExtractTrace(ctx context.Context, e event.Event) context.Context {
	return w3c.Extract(ctx, extensionCarrier{&e})
}

// extensionCarrier lets a propagator read and write an event's extensions.
type extensionCarrier struct{ e *event.Event }

func (c extensionCarrier) Get(key string) string {
	v, ok := c.e.Extensions()[key]
	if !ok {
		return ""
	}
	return fmt.Sprint(v)
}

func (c extensionCarrier) Set(key, value string) { c.e.SetExtension(key, value) }

func (c extensionCarrier) Keys() []string {
	keys := make([]string, 0, len(c.e.Extensions()))
	for k := range c.e.Extensions() {
		keys = append(keys, k)
	}
	return keys
}
