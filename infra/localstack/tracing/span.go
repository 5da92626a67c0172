// Package tracing lets the local stack show a purchase's trace end to end:
// a tiny OTLP/HTTP receiver (the official OTLP protobuf types) that keeps
// the spans every function exports, and a renderer that prints one trace
// as a tree (`fulfillctl trace <trace id | subscription id>`).
package tracing

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
)

// Span is what the local view keeps of one exported span.
type Span struct {
	TraceID    string            `json:"trace_id"`
	SpanID     string            `json:"span_id"`
	ParentID   string            `json:"parent_id,omitempty"`
	Service    string            `json:"service"`
	Scope      string            `json:"scope"` // the instrumentation library that made it
	Name       string            `json:"name"`
	Kind       string            `json:"kind"`
	Start      time.Time         `json:"start"`
	End        time.Time         `json:"end"`
	Error      string            `json:"error,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Duration is how long the span lasted.
func (s Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// SubjectAttribute names the span attribute holding a CloudEvent's subject
// (the subscription id), by which a subscription's traces are found.
const SubjectAttribute = "cloudevents.event_subject"

// IgnoredAttribute marks a delivery of a type the function does not handle.
const IgnoredAttribute = "fulfillment.ignored"

// FromOTLP flattens an OTLP export request into spans.
func FromOTLP(req *coltracepb.ExportTraceServiceRequest) []Span {
	var out []Span
	for _, rs := range req.GetResourceSpans() {
		service := attrs(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			scope := ss.GetScope().GetName()
			for _, s := range ss.GetSpans() {
				sp := Span{Scope: scope,
					TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					ParentID: hex.EncodeToString(s.GetParentSpanId()), Service: service, Name: s.GetName(),
					Kind:       strings.ToLower(strings.TrimPrefix(s.GetKind().String(), "SPAN_KIND_")),
					Start:      time.Unix(0, int64(s.GetStartTimeUnixNano())).UTC(),
					End:        time.Unix(0, int64(s.GetEndTimeUnixNano())).UTC(),
					Attributes: attrs(s.GetAttributes()),
				}
				if st := s.GetStatus(); st.GetCode().String() == "STATUS_CODE_ERROR" {
					sp.Error = st.GetMessage()
					if sp.Error == "" {
						sp.Error = "error"
					}
				}
				out = append(out, sp)
			}
		}
	}
	return out
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = value(kv.GetValue())
	}
	return m
}

func value(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	default:
		return fmt.Sprint(v.GetValue())
	}
}
