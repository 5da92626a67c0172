package deploy_test

import (
	"strings"
	"testing"
	"time"

	"fulfillment/infra/deploy"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	thresholds := deploy.Thresholds{MaxErrorRate: 0.01, MaxP95: 2 * time.Second, MinRequests: 20}
	const watchFor = 10 * time.Minute
	cases := []struct {
		name    string
		sample  deploy.Sample
		elapsed time.Duration
		want    deploy.Verdict
		reason  string
	}{
		{"error rate crosses the threshold mid-watch", deploy.Sample{Requests: 200, Errors: 6, P95: time.Second}, 3 * time.Minute, deploy.Rollback, "error rate 3.00%"},
		{"error rate just above the threshold at the end", deploy.Sample{Requests: 1000, Errors: 11, P95: time.Second}, watchFor, deploy.Rollback, "above 1.00%"},
		{"error rate exactly at the threshold is within it", deploy.Sample{Requests: 1000, Errors: 10, P95: time.Second}, watchFor, deploy.Promote, "within thresholds"},
		{"slow canary", deploy.Sample{Requests: 50, P95: 3 * time.Second}, time.Minute, deploy.Rollback, "p95 latency 3s above 2s"},
		{"a few early errors are too few to judge", deploy.Sample{Requests: 5, Errors: 2}, time.Minute, deploy.Watch, "5 requests"},
		{"healthy, still watching", deploy.Sample{Requests: 100, Errors: 0, P95: 300 * time.Millisecond}, 5 * time.Minute, deploy.Watch, "after 5m0s of 10m0s"},
		{"healthy for the whole watch", deploy.Sample{Requests: 100, Errors: 1, P95: 300 * time.Millisecond}, watchFor, deploy.Promote, "within thresholds"},
		{"too little traffic to judge", deploy.Sample{Requests: 3}, watchFor, deploy.Rollback, "only 3 requests"},
		{"no traffic at all", deploy.Sample{}, watchFor, deploy.Rollback, "only 0 requests"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := deploy.Decide(thresholds, c.sample, c.elapsed, watchFor)
			if got.Verdict != c.want || !strings.Contains(got.Reason, c.reason) {
				t.Fatalf("Decide = %s (%s), want %s (…%s…)", got.Verdict, got.Reason, c.want, c.reason)
			}
		})
	}
}

func TestDecideWithoutMinimumPromotesAnIdleFunction(t *testing.T) {
	t.Parallel()
	// renewal runs on an hourly tick: a canary may see no request at all.
	got := deploy.Decide(deploy.Thresholds{MaxErrorRate: 0.01}, deploy.Sample{}, time.Minute, time.Minute)
	if got.Verdict != deploy.Promote {
		t.Fatalf("Decide = %s (%s), want promote", got.Verdict, got.Reason)
	}
}
