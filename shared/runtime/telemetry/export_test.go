package telemetry

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// collector is a fake OTLP collector over both protocols, built on the
// official OTLP types; it keeps the service names of what it received.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu             sync.Mutex
	spans, metrics []string // service.name of each resource received
}

func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for range ss.GetSpans() {
				c.spans = append(c.spans, serviceName(rs.GetResource().GetAttributes()))
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// metricsServer adapts the collector to the metrics service (both services
// name their method Export).
type metricsServer struct {
	colmetricpb.UnimplementedMetricsServiceServer
	c *collector
}

func (m metricsServer) Export(_ context.Context, req *colmetricpb.ExportMetricsServiceRequest) (*colmetricpb.ExportMetricsServiceResponse, error) {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	for _, rm := range req.GetResourceMetrics() {
		m.c.metrics = append(m.c.metrics, serviceName(rm.GetResource().GetAttributes()))
	}
	return &colmetricpb.ExportMetricsServiceResponse{}, nil
}

func serviceName(attrs []*commonpb.KeyValue) string {
	for _, kv := range attrs {
		if kv.GetKey() == "service.name" {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

// serveHTTP is OTLP/HTTP with binary protobuf bodies.
func (c *collector) serveHTTP(t *testing.T) string {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		var req coltracepb.ExportTraceServiceRequest
		decode(t, r, &req)
		resp, _ := c.Export(r.Context(), &req)
		reply(w, resp)
	})
	mux.HandleFunc("POST /v1/metrics", func(w http.ResponseWriter, r *http.Request) {
		var req colmetricpb.ExportMetricsServiceRequest
		decode(t, r, &req)
		resp, _ := metricsServer{c: c}.Export(r.Context(), &req)
		reply(w, resp)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func decode(t *testing.T, r *http.Request, m proto.Message) {
	b, err := io.ReadAll(r.Body)
	if err == nil {
		err = proto.Unmarshal(b, m)
	}
	if err != nil {
		t.Errorf("undecodable OTLP/HTTP body: %v", err)
	}
}

func reply(w http.ResponseWriter, m proto.Message) {
	b, _ := proto.Marshal(m)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(b)
}

func (c *collector) serveGRPC(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, c)
	colmetricpb.RegisterMetricsServiceServer(srv, metricsServer{c: c})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return "http://" + ln.Addr().String()
}

// TestExportsOverEitherOTLPProtocol: what the configuration names is where
// spans and metrics go, over HTTP or gRPC.
func TestExportsOverEitherOTLPProtocol(t *testing.T) {
	for _, protocol := range []string{"http/protobuf", "grpc"} {
		t.Run(protocol, func(t *testing.T) {
			c := &collector{}
			endpoint := c.serveHTTP(t)
			if protocol == "grpc" {
				endpoint = c.serveGRPC(t)
			}
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
			t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
			t.Setenv("OTEL_METRICS_EXPORTER", "otlp")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tp, mp, err := providers(ctx, "export-test")
			if err != nil {
				t.Fatal(err)
			}
			_, span := tp.Tracer("test").Start(ctx, "POST checkout-webhook")
			span.End()
			counter, err := mp.Meter("test").Int64Counter("test.events")
			if err != nil {
				t.Fatal(err)
			}
			counter.Add(ctx, 1)
			if err := tp.Shutdown(ctx); err != nil { // flushes the spans
				t.Fatal(err)
			}
			if err := mp.Shutdown(ctx); err != nil { // exports the metrics once more
				t.Fatal(err)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if len(c.spans) != 1 || c.spans[0] != "export-test" || len(c.metrics) == 0 || c.metrics[0] != "export-test" {
				t.Errorf("collector got spans from %v and metrics from %v; want one span and metrics from export-test", c.spans, c.metrics)
			}
		})
	}
}
