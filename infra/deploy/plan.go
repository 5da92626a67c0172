package deploy

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Target is one function deployed to one environment: a GCP project's
// Cloud Run (Project, Region) or a Knative cluster (Context, Namespace).
type Target struct {
	Function string
	Env      string
	Project  string
	Region   string
	Registry string // repository the image is pushed to (Artifact Registry on GCP)

	Knative   bool
	Context   string // kubeconfig context of the cluster
	Namespace string

	CanaryPercent int
	WatchFor      time.Duration // how long the canary is watched before promotion
	Every         time.Duration // how often its metrics are read
	Thresholds    Thresholds

	// Suffix names the new revision (<function>-<suffix>); unique per deploy.
	Suffix string
}

// Values a command's output is kept as, and later commands refer to as ${NAME}.
const (
	Base     = "BASE"     // the base image's digest reference
	Image    = "IMAGE"    // the pushed image's digest reference
	Previous = "PREVIOUS" // the revision serving all traffic before the deploy
)

// Command is one command of a deploy.
type Command struct {
	Why     string
	Env     []string // NAME=value set for this command only
	Args    []string
	Capture string // the value its standard output is kept as, if any

	// RollbackOnFailure: when this command fails the canary may already
	// have traffic, so the deploy rolls back.
	RollbackOnFailure bool
}

// String is the command as a shell line.
func (c Command) String() string {
	parts := append([]string{}, c.Env...)
	for _, a := range c.Args {
		parts = append(parts, quote(a))
	}
	return strings.Join(parts, " ")
}

// quote leaves plain words and ${VALUE} references alone and single-quotes the rest.
func quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./:@,${}") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Plan is every command of one deploy, in order.
type Plan struct {
	Target   Target
	Prepare  []Command // build, find the rollback target, deploy with no traffic, shift the canary share
	Promote  Command
	Rollback Command
}

// Revision is the name of the revision the deploy creates.
func (t Target) Revision() string { return t.Function + "-" + t.Suffix }

func (t Target) where() string {
	if t.Knative {
		return fmt.Sprintf("Knative context %s, namespace %s", t.Context, t.Namespace)
	}
	return fmt.Sprintf("project %s, region %s", t.Project, t.Region)
}

// NewPlan lists the commands that ship t.
func NewPlan(t Target) Plan {
	if t.Knative {
		return newKnativePlan(t)
	}
	where := []string{"--project=" + t.Project, "--region=" + t.Region}
	gcloud := func(args ...string) []string { return append(append([]string{"gcloud"}, args...), where...) }
	return Plan{
		Target: t,
		Prepare: []Command{
			baseImage(),
			build(t, "gcp", t.Function),
			{
				Why:     "find the revision serving 100% now: the rollback target",
				Args:    gcloud("run", "services", "describe", t.Function, "--format=value(status.traffic[0].revisionName,status.traffic[0].percent)"),
				Capture: Previous,
			},
			{
				Why:  "deploy the image as revision " + t.Revision() + " with no traffic",
				Args: gcloud("run", "deploy", t.Function, "--image=${"+Image+"}", "--revision-suffix="+t.Suffix, "--no-traffic"),
			},
			{
				Why:  fmt.Sprintf("shift %d%% of traffic to the canary", t.CanaryPercent),
				Args: gcloud("run", "services", "update-traffic", t.Function, fmt.Sprintf("--to-revisions=%s=%d", t.Revision(), t.CanaryPercent)),

				RollbackOnFailure: true,
			},
		},
		// Traffic follows the latest revision again (the canary is the
		// latest), so a later terraform change to settings is served.
		Promote: Command{
			Why:  "promote: all traffic to the latest revision, " + t.Revision(),
			Args: gcloud("run", "services", "update-traffic", t.Function, "--to-latest"),
		},
		Rollback: Command{
			Why:  "roll back: all traffic to the previous revision (pinned until the next deploy)",
			Args: gcloud("run", "services", "update-traffic", t.Function, "--to-revisions=${"+Previous+"}=100"),
		},
	}
}

// newKnativePlan ships t with kn: the same sequence on a Knative Service.
func newKnativePlan(t Target) Plan {
	where := []string{"--context=" + t.Context, "--namespace=" + t.Namespace}
	kn := func(args ...string) []string { return append(append([]string{"kn"}, args...), where...) }
	return Plan{
		Target: t,
		Prepare: []Command{
			baseImage(),
			build(t, "knative", t.Function+"-knative"),
			{
				Why:     "find the revision serving 100% now: the rollback target",
				Args:    []string{"kubectl", "--context=" + t.Context, "--namespace=" + t.Namespace, "get", "ksvc", t.Function, "--output=jsonpath={.status.traffic[0].revisionName} {.status.traffic[0].percent}"},
				Capture: Previous,
			},
			{
				Why:  "deploy the image as revision " + t.Revision() + " with no traffic",
				Args: kn("service", "update", t.Function, "--image=${"+Image+"}", "--revision-name="+t.Revision(), "--traffic=${"+Previous+"}=100"),
			},
			{
				Why:  fmt.Sprintf("shift %d%% of traffic to the canary", t.CanaryPercent),
				Args: kn("service", "update", t.Function, fmt.Sprintf("--traffic=%s=%d,${%s}=%d", t.Revision(), t.CanaryPercent, Previous, 100-t.CanaryPercent)),

				RollbackOnFailure: true,
			},
		},
		Promote: Command{
			Why:  "promote: all traffic to the latest revision, " + t.Revision(),
			Args: kn("service", "update", t.Function, "--traffic=@latest=100"),
		},
		Rollback: Command{
			Why:  "roll back: all traffic to the previous revision (pinned until the next deploy)",
			Args: kn("service", "update", t.Function, "--traffic=${"+Previous+"}=100"),
		},
	}
}

func baseImage() Command {
	return Command{
		Why:     "assemble the base image (CA certificates only) in ko's cache",
		Args:    []string{"go", "run", "./infra/cmd/kobase"},
		Capture: Base,
	}
}

// build pushes the function's image for one entry point (cmd/gcp or cmd/knative).
func build(t Target, entry, repository string) Command {
	return Command{
		Why:     "build and push " + t.Function + "'s " + entry + " image",
		Env:     []string{"KO_DOCKER_REPO=" + t.Registry + "/" + repository, "KO_DEFAULTBASEIMAGE=${" + Base + "}"},
		Args:    []string{"ko", "build", "--bare", "./functions/" + t.Function + "/cmd/" + entry},
		Capture: Image,
	}
}

// Print writes the whole sequence, both outcomes included: what DRY_RUN shows.
func (p Plan) Print(w io.Writer, m Metrics) {
	t := p.Target
	fmt.Fprintf(w, "# deploy %s to %s (%s), revision %s\n", t.Function, t.Env, t.where(), t.Revision())
	for i, c := range p.Prepare {
		fmt.Fprintf(w, "\n# %d. %s\n%s\n", i+1, c.Why, c)
		if c.Capture != "" {
			fmt.Fprintf(w, "#    -> %s\n", c.Capture)
		}
	}
	n := len(p.Prepare) + 1
	fmt.Fprintf(w, "\n# %d. watch the canary for %s, reading its metrics every %s:\n", n, t.WatchFor, t.Every)
	for _, q := range m.Describe(t) {
		fmt.Fprintf(w, "#    %s\n", q)
	}
	th := t.Thresholds
	fmt.Fprintf(w, "#    roll back at once if, with at least %d requests, the error rate exceeds %.2f%% or p95 latency exceeds %s;\n", max(th.MinRequests, 1), 100*th.MaxErrorRate, th.MaxP95)
	fmt.Fprintf(w, "#    after %s promote if it served at least %d requests, else roll back.\n", t.WatchFor, th.MinRequests)
	fmt.Fprintf(w, "\n# %da. %s\n%s\n", n+1, p.Promote.Why, p.Promote)
	fmt.Fprintf(w, "\n# %db. %s\n%s\n", n+1, p.Rollback.Why, p.Rollback)
}
