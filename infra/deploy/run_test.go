package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"fulfillment/infra/deploy"
)

// gcloudAndKo answers like the real tools would and records every command.
type gcloudAndKo struct {
	ran     []string
	failing string // a command containing this fails
}

func (g *gcloudAndKo) Run(_ context.Context, c deploy.Command) (string, error) {
	line := c.String()
	g.ran = append(g.ran, line)
	if g.failing != "" && strings.Contains(line, g.failing) {
		return "", errors.New("exit status 1")
	}
	switch c.Capture {
	case deploy.Base:
		return "fulfillment.invalid/base/static@sha256:aaaa\n", nil
	case deploy.Image:
		return "us-central1-docker.pkg.dev/p/functions/provisioning@sha256:bbbb\n", nil
	case deploy.Previous:
		return "provisioning-00041-abc\t100\n", nil
	}
	return "", nil
}

// canaryMetrics returns one sample per read, the last one from then on.
type canaryMetrics struct {
	samples []deploy.Sample
	reads   int
}

func (m *canaryMetrics) Canary(context.Context, deploy.Target, time.Time, time.Time) (deploy.Sample, error) {
	s := m.samples[min(m.reads, len(m.samples)-1)]
	m.reads++
	return s, nil
}

func (m *canaryMetrics) Describe(deploy.Target) []string { return nil }

// fakeClock moves forward when slept on, without waiting.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.now = c.now.Add(d)
	return nil
}

func stagingPlan() deploy.Plan {
	return deploy.NewPlan(deploy.Target{
		Function: "provisioning", Env: "staging", Project: "fulfillment-staging", Region: "us-central1",
		Registry: "us-central1-docker.pkg.dev/fulfillment-staging/functions", CanaryPercent: 10,
		WatchFor: 10 * time.Minute, Every: time.Minute, Suffix: "20261121-150000",
		Thresholds: deploy.Thresholds{MaxErrorRate: 0.01, MaxP95: 2 * time.Second, MinRequests: 20},
	})
}

const (
	toCanary   = "--to-revisions=provisioning-20261121-150000=10"
	toNew      = "--to-latest"
	toPrevious = "--to-revisions=provisioning-00041-abc=100"
)

func TestRunRollsBackWhenTheCanaryErrorRateCrossesTheThreshold(t *testing.T) {
	t.Parallel()
	tools := &gcloudAndKo{}
	metrics := &canaryMetrics{samples: []deploy.Sample{
		{Requests: 30, Errors: 0, P95: 200 * time.Millisecond},
		{Requests: 80, Errors: 4, P95: 250 * time.Millisecond}, // 5%: over 1%
	}}
	var log bytes.Buffer

	d, err := deploy.Run(context.Background(), stagingPlan(), tools, metrics, &fakeClock{now: time.Unix(0, 0)}, &log)
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != deploy.Rollback || !strings.Contains(d.Reason, "error rate 5.00%") {
		t.Fatalf("decision = %s (%s), want rollback on the error rate", d.Verdict, d.Reason)
	}
	if metrics.reads != 2 {
		t.Errorf("metrics read %d times, want 2 (roll back as soon as the threshold is crossed)", metrics.reads)
	}
	last := tools.ran[len(tools.ran)-1]
	if !strings.Contains(last, "update-traffic provisioning "+toPrevious) {
		t.Errorf("last command %q, want all traffic back to the previous revision", last)
	}
	for _, line := range tools.ran {
		if strings.Contains(line, toNew) {
			t.Errorf("promoted although rolled back: %q", line)
		}
	}
	if !strings.Contains(log.String(), "decision: rollback") {
		t.Errorf("log does not say why:\n%s", log.String())
	}
}

func TestRunPromotesAHealthyCanaryAfterTheWatch(t *testing.T) {
	t.Parallel()
	tools := &gcloudAndKo{}
	metrics := &canaryMetrics{samples: []deploy.Sample{{Requests: 500, Errors: 2, P95: 300 * time.Millisecond}}}

	d, err := deploy.Run(context.Background(), stagingPlan(), tools, metrics, &fakeClock{now: time.Unix(0, 0)}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != deploy.Promote || metrics.reads != 10 {
		t.Fatalf("decision = %s (%s) after %d reads, want promote after 10", d.Verdict, d.Reason, metrics.reads)
	}
	want := []string{
		"go run ./infra/cmd/kobase",
		"KO_DOCKER_REPO=us-central1-docker.pkg.dev/fulfillment-staging/functions/provisioning KO_DEFAULTBASEIMAGE=fulfillment.invalid/base/static@sha256:aaaa ko build --bare ./functions/provisioning/cmd/gcp",
		"gcloud run services describe provisioning",
		"gcloud run deploy provisioning --image=us-central1-docker.pkg.dev/p/functions/provisioning@sha256:bbbb --revision-suffix=20261121-150000 --no-traffic",
		"gcloud run services update-traffic provisioning " + toCanary,
		"gcloud run services update-traffic provisioning " + toNew,
	}
	if len(tools.ran) != len(want) {
		t.Fatalf("ran %d commands, want %d:\n%s", len(tools.ran), len(want), strings.Join(tools.ran, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(tools.ran[i], w) {
			t.Errorf("command %d = %q, want it to start %q", i+1, tools.ran[i], w)
		}
	}
}

func TestRunRollsBackWhenTheCanaryShareCannotBeSet(t *testing.T) {
	t.Parallel()
	tools := &gcloudAndKo{failing: toCanary}
	_, err := deploy.Run(context.Background(), stagingPlan(), tools, &canaryMetrics{samples: []deploy.Sample{{}}}, &fakeClock{}, &bytes.Buffer{})
	if err == nil {
		t.Fatal("Run succeeded although the traffic shift failed")
	}
	if last := tools.ran[len(tools.ran)-1]; !strings.Contains(last, toPrevious) {
		t.Errorf("last command %q, want a rollback to the previous revision", last)
	}
}

func TestRunRefusesToStartWhileTrafficIsSplit(t *testing.T) {
	t.Parallel()
	tools := &splitTraffic{}
	_, err := deploy.Run(context.Background(), stagingPlan(), tools, &canaryMetrics{samples: []deploy.Sample{{}}}, &fakeClock{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "traffic is split") {
		t.Fatalf("err = %v, want a refusal while an earlier canary holds traffic", err)
	}
	for _, line := range tools.ran {
		if strings.Contains(line, "gcloud run deploy") {
			t.Errorf("deployed although traffic was split: %q", line)
		}
	}
}

type splitTraffic struct{ gcloudAndKo }

func (s *splitTraffic) Run(ctx context.Context, c deploy.Command) (string, error) {
	if c.Capture == deploy.Previous {
		s.ran = append(s.ran, c.String())
		return "provisioning-00041-abc\t90\n", nil
	}
	return s.gcloudAndKo.Run(ctx, c)
}

func TestPrintShowsTheWholeSequence(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	stagingPlan().Print(&out, deploy.CloudMonitoring{})
	for _, want := range []string{
		"ko build --bare ./functions/provisioning/cmd/gcp",
		"--no-traffic",
		toCanary,
		`metric.type="run.googleapis.com/request_count" AND metric.labels.response_code_class="5xx"`,
		"error rate exceeds 1.00%",
		"errors: 5xx answers and dead letters",
		"promote: all traffic to the latest revision, provisioning-20261121-150000",
		toNew,
		"--to-revisions=${PREVIOUS}=100",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run lacks %q:\n%s", want, out.String())
		}
	}
}

func knativePlan() deploy.Plan {
	t := stagingPlan().Target
	t.Knative, t.Env, t.Context, t.Namespace, t.Registry = true, "kind-dev", "kind-dev", "fulfillment", "registry.example/fulfillment"
	return deploy.NewPlan(t)
}

func TestRunRollsBackAKnativeCanary(t *testing.T) {
	t.Parallel()
	tools := &gcloudAndKo{}
	metrics := &canaryMetrics{samples: []deploy.Sample{{Requests: 40, Errors: 8}}}

	d, err := deploy.Run(context.Background(), knativePlan(), tools, metrics, &fakeClock{now: time.Unix(0, 0)}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != deploy.Rollback {
		t.Fatalf("decision = %s (%s), want rollback", d.Verdict, d.Reason)
	}
	want := []string{
		"go run ./infra/cmd/kobase",
		"KO_DOCKER_REPO=registry.example/fulfillment/provisioning-knative KO_DEFAULTBASEIMAGE=fulfillment.invalid/base/static@sha256:aaaa ko build --bare ./functions/provisioning/cmd/knative",
		"kubectl --context=kind-dev --namespace=fulfillment get ksvc provisioning",
		"kn service update provisioning --image=us-central1-docker.pkg.dev/p/functions/provisioning@sha256:bbbb --revision-name=provisioning-20261121-150000 --traffic=provisioning-00041-abc=100",
		"kn service update provisioning --traffic=provisioning-20261121-150000=10,provisioning-00041-abc=90",
		"kn service update provisioning --traffic=provisioning-00041-abc=100",
	}
	if len(tools.ran) != len(want) {
		t.Fatalf("ran %d commands, want %d:\n%s", len(tools.ran), len(want), strings.Join(tools.ran, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(tools.ran[i], w) {
			t.Errorf("command %d = %q, want it to start %q", i+1, tools.ran[i], w)
		}
	}
}
