package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Prometheus reads a Knative revision's requests, 5xx answers and p95
// latency from the metrics its queue-proxy exports (revision_app_request_*),
// through the Prometheus HTTP API (/api/v1/query).
type Prometheus struct {
	Client *http.Client
	URL    string // e.g. http://prometheus.monitoring:9090
}

// Describe lists the queries, for the dry run.
func (p Prometheus) Describe(t Target) []string {
	out := []string{"requests, 5xx answers (the errors), p95 latency:"}
	for _, q := range p.queries(t, "${SECONDS_WATCHED}") {
		out = append(out, "GET "+p.URL+"/api/v1/query query="+q)
	}
	return out
}

// Canary evaluates the queries over [since, until] at until.
func (p Prometheus) Canary(ctx context.Context, t Target, since, until time.Time) (Sample, error) {
	var v [3]float64
	for i, q := range p.queries(t, strconv.Itoa(max(1, int(until.Sub(since).Seconds())))) {
		var err error
		if v[i], err = p.value(ctx, q, until); err != nil {
			return Sample{}, err
		}
	}
	return Sample{Requests: int(math.Round(v[0])), Errors: int(math.Round(v[1])), P95: time.Duration(v[2] * float64(time.Millisecond))}, nil
}

// queries: all requests, 5xx answers, p95 latency (ms) of the canary revision.
func (p Prometheus) queries(t Target, seconds string) []string {
	sel := fmt.Sprintf(`namespace_name="%s",revision_name="%s"`, t.Namespace, t.Revision())
	return []string{
		fmt.Sprintf(`sum(increase(revision_app_request_count{%s}[%ss]))`, sel, seconds),
		fmt.Sprintf(`sum(increase(revision_app_request_count{%s,response_code_class="5xx"}[%ss]))`, sel, seconds),
		fmt.Sprintf(`histogram_quantile(0.95, sum by (le) (rate(revision_app_request_latencies_bucket{%s}[%ss])))`, sel, seconds),
	}
}

// value is an instant query's single value; 0 when the revision served
// nothing (an empty vector, or NaN from a quantile of no requests).
func (p Prometheus) value(ctx context.Context, query string, at time.Time) (float64, error) {
	u := p.URL + "/api/v1/query?" + url.Values{"query": {query}, "time": {strconv.FormatInt(at.Unix(), 10)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, fmt.Errorf("deploy.Prometheus: %w", err)
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("deploy.Prometheus: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"` // [unix time, "value"]
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("deploy.Prometheus: %s: %w", resp.Status, err)
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("deploy.Prometheus: %s: %s", resp.Status, body.Error)
	}
	if len(body.Data.Result) == 0 {
		return 0, nil
	}
	s, _ := body.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("deploy.Prometheus: value %q: %w", s, err)
	}
	if math.IsNaN(v) {
		return 0, nil
	}
	return v, nil
}
