// Command deploy ships one function to one environment, on Cloud Run or on
// a Knative cluster: build and push its image, deploy it as a revision with
// no traffic, give it a canary share, watch its error rate and latency, then
// promote it or roll back. With -dry-run it prints every command instead
// (make deploy DRY_RUN=1).
//
//	go run ./infra/cmd/deploy -function provisioning -env staging [-dry-run]
//	go run ./infra/cmd/deploy -function provisioning -env my-cluster -knative \
//	  -registry registry.example/fulfillment -prometheus http://prometheus:9090
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/oauth2/google"

	"fulfillment/infra/deploy"
	"fulfillment/infra/localstack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := realMain(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "deploy:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("deploy", flag.ContinueOnError)
	function := fs.String("function", "", "function to deploy (a directory under functions/)")
	env := fs.String("env", "", "environment: terraform/environments/<env>.tfvars, or with -knative the kubeconfig context")
	knative := fs.Bool("knative", false, "deploy to a Knative cluster (kn, kubectl) instead of Cloud Run")
	namespace := fs.String("namespace", "fulfillment", "with -knative: the functions' namespace (infra/knative)")
	registry := fs.String("registry", "", "with -knative: the image repository to push to")
	prometheus := fs.String("prometheus", "", "with -knative: Prometheus scraping Knative's queue-proxy metrics")
	dryRun := fs.Bool("dry-run", false, "print every command instead of running it")
	canary := fs.Int("canary", 10, "percent of traffic the new revision gets while watched")
	watch := fs.Duration("watch", 10*time.Minute, "how long the canary is watched")
	every := fs.Duration("every", time.Minute, "how often its metrics are read")
	maxErrorRate := fs.Float64("max-error-rate", 0.01, "roll back above this share of 5xx answers")
	maxP95 := fs.Duration("max-p95", 2*time.Second, "roll back above this p95 latency")
	minRequests := fs.Int("min-requests", 20, "requests needed to judge the canary (0 for a function that may see none, e.g. renewal)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := localstack.RepoRoot()
	if err != nil {
		return err
	}
	if *function == "" || *env == "" {
		return errors.New("usage: deploy -function <name> -env <staging|production> [-dry-run]")
	}
	if _, err := os.Stat(filepath.Join(root, "functions", *function)); err != nil {
		return fmt.Errorf("no function %q under functions/", *function)
	}
	if *canary < 1 || *canary > 99 {
		return fmt.Errorf("canary share %d%%: want 1 to 99", *canary)
	}
	target := deploy.Target{
		Function: *function, Env: *env,
		CanaryPercent: *canary, WatchFor: *watch, Every: *every,
		Thresholds: deploy.Thresholds{MaxErrorRate: *maxErrorRate, MaxP95: *maxP95, MinRequests: *minRequests},
		Suffix:     time.Now().UTC().Format("20060102-150405"),
	}
	var metrics deploy.Metrics
	if *knative {
		if *registry == "" || *prometheus == "" {
			return errors.New("-knative needs -registry and -prometheus")
		}
		target.Knative, target.Context, target.Namespace, target.Registry = true, *env, *namespace, *registry
		metrics = deploy.Prometheus{Client: http.DefaultClient, URL: *prometheus}
	} else {
		where, err := deploy.LoadEnvironment(root, *env)
		if err != nil {
			return err
		}
		target.Project, target.Region, target.Registry = where.Project, where.Region, where.Registry()
		metrics = deploy.CloudMonitoring{}
	}
	plan := deploy.NewPlan(target)
	if *dryRun {
		plan.Print(os.Stdout, metrics)
		return nil
	}

	if !*knative {
		client, err := google.DefaultClient(ctx, "https://www.googleapis.com/auth/monitoring.read")
		if err != nil {
			return fmt.Errorf("credentials for Cloud Monitoring: %w", err)
		}
		metrics = deploy.CloudMonitoring{Client: client}
	}
	d, err := deploy.Run(ctx, plan, shell{dir: root}, metrics, deploy.RealClock{}, os.Stdout)
	if err != nil {
		return err
	}
	if d.Verdict == deploy.Rollback {
		return fmt.Errorf("rolled back: %s", d.Reason)
	}
	return nil
}

// shell runs commands in the module root, tools from ./bin first.
type shell struct{ dir string }

func (s shell) Run(ctx context.Context, c deploy.Command) (string, error) {
	cmd := exec.CommandContext(ctx, c.Args[0], c.Args[1:]...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Env = append(cmd.Env, "PATH="+filepath.Join(s.dir, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if c.Capture == "" {
		os.Stdout.Write(out)
	}
	return strings.TrimSpace(string(out)), err
}
