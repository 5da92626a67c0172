package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/user"
)

const trialUsage = `  trial-extend -namespace N -days D -reason WHY [-by WHO]
                          extend an active trial (recorded with who and why); the next trial
                          tick (POST /trials/tick) tells GitLab and publishes trial.extended
  trial-show -namespace N the namespace's trial, with its extensions
`

// trialExtend extends a namespace's trial by days, recording the operator
// and the reason.
func trialExtend(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("trial-extend", flag.ContinueOnError)
	ns := fs.String("namespace", "", "namespace id")
	days := fs.Int("days", 0, "days to add (1..90)")
	reason := fs.String("reason", "", "why (a ticket, a deal)")
	by := fs.String("by", operator(), "who extends it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ns == "" || *reason == "" {
		return errors.New("trial-extend: -namespace and -reason are required")
	}
	st, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	t, err := st.ExtendTrial(ctx, *ns, *days, *by, *reason, now())
	if err != nil {
		return err
	}
	return printJSON(t)
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
