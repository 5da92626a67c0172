package deploy

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Executor runs one command and returns its standard output.
type Executor interface {
	Run(ctx context.Context, c Command) (string, error)
}

// Metrics reads what the canary revision served.
type Metrics interface {
	Canary(ctx context.Context, t Target, since, until time.Time) (Sample, error)
	// Describe says which queries Canary makes, for the dry run.
	Describe(t Target) []string
}

// Clock is the time the watch runs on; tests pass one that does not wait.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// Run carries out the plan: prepare, watch until Decide says promote or
// roll back, then do it. The decision is returned with any error; a failure
// after the canary got traffic rolls back before returning.
func Run(ctx context.Context, p Plan, ex Executor, m Metrics, clock Clock, log io.Writer) (Decision, error) {
	values := map[string]string{}
	run := func(ctx context.Context, c Command) (string, error) {
		c = expand(c, values)
		fmt.Fprintf(log, "# %s\n%s\n", c.Why, c)
		out, err := ex.Run(ctx, c)
		if err != nil {
			return "", fmt.Errorf("deploy.Run: %s: %w", c.Why, err)
		}
		return strings.TrimSpace(out), nil
	}

	for _, c := range p.Prepare {
		out, err := run(ctx, c)
		if err != nil {
			if c.RollbackOnFailure {
				_, _ = run(context.WithoutCancel(ctx), p.Rollback)
			}
			return Decision{}, err
		}
		if c.Capture == Previous {
			if out, err = servingRevision(out); err != nil {
				return Decision{}, fmt.Errorf("deploy.Run: %w", err)
			}
		}
		if c.Capture != "" {
			values[c.Capture] = out
		}
	}

	t := p.Target
	start := clock.Now()
	var d Decision
	for {
		if err := clock.Sleep(ctx, t.Every); err != nil {
			d = Decision{Rollback, "watch interrupted: " + err.Error()}
			break
		}
		now := clock.Now()
		s, err := m.Canary(ctx, t, start, now)
		if err != nil {
			d = Decision{Rollback, "cannot read the canary's metrics: " + err.Error()}
			break
		}
		if d = Decide(t.Thresholds, s, now.Sub(start), t.WatchFor); d.Verdict != Watch {
			break
		}
		fmt.Fprintf(log, "# watching: %s\n", d.Reason)
	}
	fmt.Fprintf(log, "# decision: %s: %s\n", d.Verdict, d.Reason)

	final := p.Promote
	if d.Verdict == Rollback {
		final = p.Rollback
	}
	// The way back must not depend on the caller's context, which may be why we stopped.
	if _, err := run(context.WithoutCancel(ctx), final); err != nil {
		return d, err
	}
	return d, nil
}

// servingRevision reads `gcloud ... --format=value(revisionName,percent)`:
// the rollback target must be a revision that serves all traffic, or an
// earlier deploy is still half done.
func servingRevision(out string) (string, error) {
	fields := strings.Fields(out)
	if len(fields) != 2 || fields[1] != "100" {
		return "", fmt.Errorf("traffic is split (%q): finish or roll back the earlier deploy first", out)
	}
	return fields[0], nil
}

// expand replaces ${NAME} in a command with captured values.
func expand(c Command, values map[string]string) Command {
	sub := func(s string) string {
		return os.Expand(s, func(k string) string {
			if v, ok := values[k]; ok {
				return v
			}
			return "${" + k + "}"
		})
	}
	out := Command{Why: c.Why, Capture: c.Capture}
	for _, e := range c.Env {
		out.Env = append(out.Env, sub(e))
	}
	for _, a := range c.Args {
		out.Args = append(out.Args, sub(a))
	}
	return out
}

// RealClock is the wall clock.
type RealClock struct{}

func (RealClock) Now() time.Time { return time.Now() }

func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
