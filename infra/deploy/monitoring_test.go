package deploy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"fulfillment/infra/deploy"
)

// A double of Cloud Monitoring's timeSeries.list answering in its JSON shape.
func TestCloudMonitoringReadsTheCanaryRevision(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var filters []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v3/projects/fulfillment-staging/timeSeries" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		mu.Lock()
		filters = append(filters, q.Get("filter"))
		mu.Unlock()
		if q.Get("interval.startTime") != "2026-11-21T15:00:00Z" || q.Get("interval.endTime") != "2026-11-21T15:05:00Z" || q.Get("aggregation.alignmentPeriod") != "300s" {
			http.Error(w, "bad interval", http.StatusBadRequest)
			return
		}
		switch {
		case strings.Contains(q.Get("filter"), "user/dead_lettered"):
			w.Write([]byte(`{"timeSeries":[{"points":[{"value":{"int64Value":"2"}}]}]}`))
		case strings.Contains(q.Get("filter"), `response_code_class="5xx"`):
			w.Write([]byte(`{"timeSeries":[{"points":[{"value":{"int64Value":"3"}}]}]}`))
		case strings.Contains(q.Get("filter"), "request_latencies"):
			w.Write([]byte(`{"timeSeries":[{"points":[{"value":{"doubleValue":412.5}},{"value":{"doubleValue":380}}]}]}`))
		default:
			w.Write([]byte(`{"timeSeries":[{"points":[{"value":{"int64Value":"100"}},{"value":{"int64Value":"20"}}]}]}`))
		}
	}))
	defer srv.Close()

	m := deploy.CloudMonitoring{Client: srv.Client(), Endpoint: srv.URL}
	target := stagingPlan().Target
	start := time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC)
	got, err := m.Canary(context.Background(), target, start, start.Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := deploy.Sample{Requests: 120, Errors: 3 + 2, P95: 412500 * time.Microsecond}
	if got != want {
		t.Fatalf("sample = %+v, want %+v", got, want)
	}
	if len(filters) != 4 {
		t.Errorf("%d queries, want requests, 5xx, dead letters and latency", len(filters))
	}
	for _, f := range filters {
		if !strings.Contains(f, `resource.labels.revision_name="provisioning-20261121-150000"`) {
			t.Errorf("query not limited to the canary revision: %s", f)
		}
	}
}

func TestCloudMonitoringNoTrafficIsAnEmptySample(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) }))
	defer srv.Close()
	got, err := deploy.CloudMonitoring{Client: srv.Client(), Endpoint: srv.URL}.Canary(context.Background(), stagingPlan().Target, time.Unix(0, 0), time.Unix(60, 0))
	if err != nil || got != (deploy.Sample{}) {
		t.Fatalf("sample = %+v, %v; want empty", got, err)
	}
}

func TestLoadEnvironmentReadsTheTerraformVariables(t *testing.T) {
	t.Parallel()
	for env, project := range map[string]string{"staging": "fulfillment-staging", "production": "fulfillment-production"} {
		got, err := deploy.LoadEnvironment("../..", env)
		if err != nil {
			t.Fatal(err)
		}
		if got.Project != project || got.Region == "" || got.Registry() != got.Region+"-docker.pkg.dev/"+project+"/functions" {
			t.Errorf("%s: %+v registry %s", env, got, got.Registry())
		}
	}
	if _, err := deploy.LoadEnvironment("../..", "nowhere"); err == nil {
		t.Error("an unknown environment loaded")
	}
}

// A double of Prometheus's /api/v1/query answering in its JSON shape.
func TestPrometheusReadsTheKnativeCanaryRevision(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("query")
		mu.Lock()
		queries = append(queries, q)
		mu.Unlock()
		if r.URL.Path != "/api/v1/query" || r.URL.Query().Get("time") != "1700000300" || !strings.Contains(q, "[300s]") {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"status":"error","error":"bad query"}`))
			return
		}
		switch {
		case strings.Contains(q, "histogram_quantile"):
			w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000300,"87.5"]}]}}`))
		case strings.Contains(q, `response_code_class="5xx"`):
			w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
		default:
			w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000300,"41.99"]}]}}`))
		}
	}))
	defer srv.Close()

	target := knativePlan().Target
	got, err := deploy.Prometheus{Client: srv.Client(), URL: srv.URL}.Canary(context.Background(), target, time.Unix(1700000000, 0), time.Unix(1700000300, 0))
	if err != nil {
		t.Fatal(err)
	}
	if want := (deploy.Sample{Requests: 42, Errors: 0, P95: 87500 * time.Microsecond}); got != want {
		t.Fatalf("sample = %+v, want %+v", got, want)
	}
	for _, q := range queries {
		if !strings.Contains(q, `namespace_name="fulfillment",revision_name="provisioning-20261121-150000"`) {
			t.Errorf("query not limited to the canary revision: %s", q)
		}
	}
}
