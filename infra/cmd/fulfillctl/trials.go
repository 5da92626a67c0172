package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/user"
	"strings"
	"time"

	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/runtime/consumer"
)

const trialUsage = `  trial-extend -namespace N -days D -reason WHY [-by WHO]
                          extend an active trial (recorded with who and why); the next trial
                          tick (POST /trials/tick) tells GitLab and publishes trial.extended
  trial-show -namespace N the namespace's trial, with its extensions
`

// trialExtend extends a namespace's trial by days, recording the operator
// and the reason.
func trialExtend(ctx context.Context, args []string) error {
	x, err := parseTrialExtension(args)
	if err != nil {
		return err
	}
	st, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	t, err := x.apply(ctx, st, now())
	if err != nil {
		return err
	}
	return printJSON(t)
}

// trialExtension is what trial-extend was asked to do.
type trialExtension struct {
	namespace, reason, by string
	days                  int
}

// parseTrialExtension reads trial-extend's flags; a missing namespace or
// reason is refused before any store is opened.
func parseTrialExtension(args []string) (trialExtension, error) {
	fs := flag.NewFlagSet("trial-extend", flag.ContinueOnError)
	ns := fs.String("namespace", "", "namespace id")
	days := fs.Int("days", 0, "days to add (1..90)")
	reason := fs.String("reason", "", "why (a ticket, a deal)")
	by := fs.String("by", operator(), "who extends it")
	if err := fs.Parse(args); err != nil {
		return trialExtension{}, err
	}
	if *ns == "" || strings.TrimSpace(*reason) == "" {
		return trialExtension{}, errors.New("trial-extend: -namespace and -reason are required")
	}
	return trialExtension{namespace: *ns, reason: *reason, by: *by, days: *days}, nil
}

// apply records the extension on the namespace's trial (the store refuses
// an empty who, days outside 1..90 and a trial that is not active), under
// the namespace's lease, which the trial tick holds while it ends a trial:
// an extension is either seen by the tick or refused after the end.
func (x trialExtension) apply(ctx context.Context, st *store.Store, at time.Time) (store.Trial, error) {
	var t store.Trial
	err := consumer.Hold(ctx, st, catalog.NamespaceLeaseOwner, catalog.NamespaceTarget(x.namespace), func(ctx context.Context) error {
		var err error
		t, err = st.ExtendTrial(ctx, x.namespace, x.days, x.by, x.reason, at)
		return err
	})
	return t, err
}

// trialShow prints a namespace's trial.
func trialShow(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("trial-show", flag.ContinueOnError)
	ns := fs.String("namespace", "", "namespace id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	t, found, err := st.Trial(ctx, *ns)
	if err != nil {
		return err
	}
	if !found {
		return errors.New("trial-show: the namespace never had a trial")
	}
	return printJSON(t)
}

// operator names who runs the command: FULFILLCTL_OPERATOR, else the OS user.
func operator() string {
	if o := os.Getenv("FULFILLCTL_OPERATOR"); o != "" {
		return o
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}
