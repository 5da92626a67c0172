package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"fulfillment/infra/consistency"
	"fulfillment/infra/deadletter"
	"fulfillment/infra/topology"
	"fulfillment/shared/adapters/pubsub"
)

// deadLetters lists dead letters grouped by subscription (the consumer).
func deadLetters(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dead-letters", flag.ContinueOnError)
	sub := fs.String("sub", "", "only this subscription (consumer function)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	recs, err := deadletter.List(ctx, st, *sub)
	if err != nil {
		return err
	}
	if *asJSON {
		for i := range recs {
			recs[i].DeadLetter.Event = "" // `dead-letter ID` shows it
		}
		return printJSON(recs)
	}
	if len(recs) == 0 {
		fmt.Println("no dead letters")
		return nil
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	current := ""
	for _, r := range recs {
		if r.Consumer != current {
			current = r.Consumer
			fmt.Fprintf(w, "\n%s (%d)\n", current, count(recs, current))
			fmt.Fprintln(w, "  ID\tAT\tEVENT TYPE\tEVENT ID\tREASON")
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", r.ID, r.At.Format(time.DateTime), r.Type, r.EventID, r.Summary(100))
	}
	return w.Flush()
}

func count(recs []deadletter.Record, consumer string) int {
	n := 0
	for _, r := range recs {
		if r.Consumer == consumer {
			n++
		}
	}
	return n
}

func showDeadLetter(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: dead-letter ID")
	}
	st, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	r, err := deadletter.Get(ctx, st, args[0])
	if err != nil {
		return err
	}
	e, err := r.Event()
	if err != nil {
		return err
	}
	r.DeadLetter.Event = ""
	return printJSON(map[string]any{"dead_letter": r, "event": e})
}

func replay(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	all := fs.Bool("all", false, "replay every dead letter (of -sub, if given)")
	sub := fs.String("sub", "", "with -all: only this subscription")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *all == (fs.NArg() == 1) {
		return errors.New("usage: replay ID | replay -all [-sub NAME]")
	}
	st, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	pub, err := pubsub.NewClient(ctx, project())
	if err != nil {
		return err
	}
	defer pub.Close()
	top, err := topology.Load()
	if err != nil {
		return err
	}
	if !*all {
		r, err := deadletter.Get(ctx, st, fs.Arg(0))
		if err != nil {
			return err
		}
		if err := deadletter.Replay(ctx, st, pub, top, r); err != nil {
			return err
		}
		fmt.Printf("replayed %s to %s (%s %s)\n", r.ID, r.Consumer, r.Type, r.EventID)
		return nil
	}
	recs, err := deadletter.List(ctx, st, *sub)
	if err != nil {
		return err
	}
	bar := progressbar.NewOptions(len(recs), progressbar.OptionSetDescription("replaying"),
		progressbar.OptionShowCount(), progressbar.OptionSetWriter(os.Stderr), progressbar.OptionClearOnFinish())
	err = deadletter.ReplayAll(ctx, st, pub, top, recs, func() { _ = bar.Add(1) })
	_ = bar.Finish()
	fmt.Printf("replayed %d dead letters\n", len(recs))
	return err
}

func checkConsistency(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("consistency", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	report, err := consistency.Check(ctx, st)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := printJSON(report); err != nil {
			return err
		}
	} else {
		fmt.Printf("%d subscriptions checked, %d drifts\n", report.Subscriptions, len(report.Drifts))
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		if len(report.Drifts) > 0 {
			fmt.Fprintln(w, "SUBSCRIPTION\tTARGET\tFIELD\tFIRESTORE SAYS\tTARGET ACKNOWLEDGED")
		}
		for _, d := range report.Drifts {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", d.SubscriptionID, d.Target, d.Field, d.Want, d.Got)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if len(report.Drifts) > 0 {
		return fmt.Errorf("%d drifts", len(report.Drifts))
	}
	return nil
}
