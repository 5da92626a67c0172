package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// CloudMonitoring reads a Cloud Run revision's request count, 5xx count,
// dead-letter count and p95 latency from the Cloud Monitoring API
// (projects.timeSeries.list). Dead letters count as errors: a function that
// dead-letters an event answers 2xx (Pub/Sub must not redeliver it), so a
// canary that wrongly refuses every event would otherwise look healthy.
type CloudMonitoring struct {
	Client   *http.Client // authorized for monitoring.read
	Endpoint string       // https://monitoring.googleapis.com, or a test server
}

const (
	requestCount = "run.googleapis.com/request_count"
	latencies    = "run.googleapis.com/request_latencies" // milliseconds
	deadLettered = "logging.googleapis.com/user/dead_lettered"
)

// Describe lists the queries, for the dry run.
func (m CloudMonitoring) Describe(t Target) []string {
	out := []string{"requests, 5xx answers, dead letters, p95 latency (errors: 5xx answers and dead letters):"}
	for _, q := range m.queries(t) {
		out = append(out, fmt.Sprintf("GET %s filter=%s reducer=%s over [watch start, now]", m.base(t), q.Get("filter"), q.Get("aggregation.crossSeriesReducer")))
	}
	return out
}

// Canary sums the revision's requests, 5xx answers and dead letters and
// takes the p95 latency over [since, until], aligned as one period.
func (m CloudMonitoring) Canary(ctx context.Context, t Target, since, until time.Time) (Sample, error) {
	var v [4]float64
	for i, q := range m.queries(t) {
		q.Set("interval.startTime", since.UTC().Format(time.RFC3339))
		q.Set("interval.endTime", until.UTC().Format(time.RFC3339))
		q.Set("aggregation.alignmentPeriod", strconv.Itoa(max(60, int(until.Sub(since).Seconds())))+"s")
		var err error
		if v[i], err = m.value(ctx, m.base(t)+"?"+q.Encode(), i == 3); err != nil {
			return Sample{}, err
		}
	}
	return Sample{Requests: int(v[0]), Errors: int(v[1] + v[2]), P95: time.Duration(v[3] * float64(time.Millisecond))}, nil
}

// queries: all requests, 5xx answers, dead letters, p95 latency (ms) of the
// canary revision.
func (m CloudMonitoring) queries(t Target) []url.Values {
	revision := fmt.Sprintf(`resource.type="cloud_run_revision" AND resource.labels.service_name="%s" AND resource.labels.revision_name="%s"`, t.Function, t.Revision())
	query := func(filter, reducer string) url.Values {
		return url.Values{
			"filter":                         {filter},
			"aggregation.perSeriesAligner":   {"ALIGN_DELTA"},
			"aggregation.crossSeriesReducer": {reducer},
		}
	}
	return []url.Values{
		query(`metric.type="`+requestCount+`" AND `+revision, "REDUCE_SUM"),
		query(`metric.type="`+requestCount+`" AND metric.labels.response_code_class="5xx" AND `+revision, "REDUCE_SUM"),
		query(`metric.type="`+deadLettered+`" AND `+revision, "REDUCE_SUM"),
		query(`metric.type="`+latencies+`" AND `+revision, "REDUCE_PERCENTILE_95"),
	}
}

func (m CloudMonitoring) base(t Target) string {
	endpoint := m.Endpoint
	if endpoint == "" {
		endpoint = "https://monitoring.googleapis.com"
	}
	return endpoint + "/v3/projects/" + t.Project + "/timeSeries"
}

// value sums the points of the answer's series (one after the reducer; none
// when the revision served nothing), or takes their maximum for a percentile.
func (m CloudMonitoring) value(ctx context.Context, u string, takeMax bool) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, fmt.Errorf("deploy.CloudMonitoring: %w", err)
	}
	resp, err := m.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("deploy.CloudMonitoring: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("deploy.CloudMonitoring: %s", resp.Status)
	}
	var body struct {
		TimeSeries []struct {
			Points []struct {
				Value struct {
					Int64Value  string   `json:"int64Value"`
					DoubleValue *float64 `json:"doubleValue"`
				} `json:"value"`
			} `json:"points"`
		} `json:"timeSeries"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("deploy.CloudMonitoring: %w", err)
	}
	var sum, most float64
	for _, ts := range body.TimeSeries {
		for _, p := range ts.Points {
			v := 0.0
			if p.Value.DoubleValue != nil {
				v = *p.Value.DoubleValue
			} else if p.Value.Int64Value != "" {
				n, err := strconv.ParseInt(p.Value.Int64Value, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("deploy.CloudMonitoring: %w", err)
				}
				v = float64(n)
			}
			sum, most = sum+v, max(most, v)
		}
	}
	if takeMax {
		return most, nil
	}
	return sum, nil
}
