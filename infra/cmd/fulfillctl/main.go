// Command fulfillctl is the operator CLI: it sends signed demo webhooks and
// Scheduler ticks to a running stack, and prints a subscription, its history,
// entitlements, dead letters and what the outside doubles received, as JSON.
//
// It reads its settings from the environment, falling back to the
// .localstack/env file `make run` writes.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	seatusage "fulfillment/functions/seat-usage"
	"fulfillment/infra/demo"
	"fulfillment/infra/localstack"
	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/firestore"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/clock"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/testsupport/testdouble"
)

const usage = `fulfillctl: operate the fulfillment stack

  purchase [-plan premium] [-seats 10] [-namespace ID | -instance ID] [-no-auto-renew] [-async]
                          send a signed checkout.session.completed
  fail-payment -sub ID    send a signed invoice.payment_failed for the next term
  pay-invoice -sub ID     send a signed invoice.paid for the next term (a renewal's result)
  tick                    publish a renewal tick, as Cloud Scheduler does
  add-seats -sub ID -seats N            add seats now (charged prorated)
  change-plan -sub ID -plan CODE        upgrade now (charged prorated) or downgrade at term end
  add-pack -sub ID -kind storage|compute_minutes -amount N
                          buy a storage (GB) or compute-minute pack for the rest of the term
  auto-renew -sub ID -on=true|false     restore or cancel automatic renewal
  seat-report -namespace ID -users N [-date YYYY-MM-DD]
                          send a namespace's daily seat report to seat-usage
  clock [-set RFC3339 | -advance 720h | -real]
                          show or move the local stack's clock (every function reads it)
  show ID                 the subscription, its history, entitlement, license and CRM sync
                          (and a self-managed one's activation code, the first time)
  ledger ID               the subscription's billing ledger: each charge, what it bought, its
                          outcome, whether it was granted; totals; grants not covered by payment
  dead-letters [-sub NAME] [-json]
                          dead-lettered deliveries per subscription, with the reason
  dead-letter ID          one dead letter in full, its event decoded
  replay ID | -all [-sub NAME]
                          send dead letters to their subscription again (a progress bar for -all)
  consistency [-json]     compare every subscription with what provisioning and CRM last
                          acknowledged, and its grants with its paid ledger lines; list each
                          drift (exit status 1 when there is any)
  calls DOUBLE            what gitlab, salesforce, slack, pagerduty or stripe received
  trace [-all] ID         the span tree of a trace id, or of each trace about a subscription id
  notices -email ADDRESS | -sub ID [-opt-out | -opt-in]
                          show or set a customer's choice of non-essential e-mail (notices.go)
  notices -sweep          publish notifications' sweep tick, as Cloud Scheduler does: send
                          the e-mails parked while the SMTP server was away
`

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fulfillctl:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Print(usage + licensingUsage)
		return errors.New("no command")
	}
	loadEnvFile()
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "purchase":
		return purchase(ctx, rest)
	case "fail-payment":
		return invoice(ctx, rest, false)
	case "pay-invoice":
		return invoice(ctx, rest, true)
	case "tick":
		return tick(ctx)
	case "add-seats", "change-plan", "add-pack", "auto-renew":
		return change(ctx, cmd, rest)
	case "seat-report":
		return seatReport(ctx, rest)
	case "clock":
		return moveClock(rest)
	case "ledger":
		return printLedger(ctx, rest)
	case "show":
		return show(ctx, rest)
	case "dead-letters":
		return deadLetters(ctx, rest)
	case "dead-letter":
		return showDeadLetter(ctx, rest)
	case "replay":
		return replay(ctx, rest)
	case "consistency":
		return checkConsistency(ctx, rest)
	case "calls":
		return calls(ctx, rest)
	case "trace":
		return traceCmd(ctx, rest)
	case "notices":
		return notices(ctx, rest)
	case "trial-extend":
		return trialExtend(ctx, rest)
	case "trial-show":
		return trialShow(ctx, rest)
	}
	if ok, err := licensingCommand(ctx, cmd, rest); ok {
		return err
	}
	fmt.Print(usage + licensingUsage + trialUsage)
	return fmt.Errorf("unknown command %q", cmd)
}

func purchase(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("purchase", flag.ContinueOnError)
	id := fmt.Sprintf("%d", time.Now().UnixNano())
	p := demo.Purchase{SessionID: "cs_demo_" + id, CustomerID: "cus_demo_" + id, Email: "buyer@example.com"}
	fs.StringVar(&p.Plan, "plan", "premium", "plan code")
	fs.IntVar(&p.Seats, "seats", 10, "seats")
	fs.StringVar(&p.NamespaceID, "namespace", "9970", "SaaS namespace id")
	fs.StringVar(&p.InstanceID, "instance", "", "self-managed instance id (instead of a namespace)")
	noRenew := fs.Bool("no-auto-renew", false, "do not renew automatically")
	async := fs.Bool("async", false, "payment still settling (payment_status unpaid)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if p.InstanceID != "" {
		p.NamespaceID = ""
	}
	p.AutoRenew, p.Paid = !*noRenew, !*async
	resp, err := demo.SendWebhook(ctx, webhookURL(), secret(), p.CheckoutCompleted("evt_demo_"+id, now()))
	if err != nil {
		return err
	}
	return printJSON(map[string]any{"subscription_id": p.SubscriptionID(), "webhook_status": resp.Status, "webhook_answer": json.RawMessage(resp.Body)})
}

func invoice(ctx context.Context, args []string, paid bool) error {
	fs := flag.NewFlagSet("invoice", flag.ContinueOnError)
	subID := fs.String("sub", "", "subscription id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	sub, err := st.Subscription(ctx, nil, *subID)
	if err != nil {
		return err
	}
	id := fmt.Sprintf("%d", time.Now().UnixNano())
	payload := demo.InvoiceEvent("evt_demo_"+id, "in_demo_"+id, sub.Customer.ProviderCustomerID, sub.ID, sub.TermEnd, paid, now())
	resp, err := demo.SendWebhook(ctx, webhookURL(), secret(), payload)
	if err != nil {
		return err
	}
	return printJSON(map[string]any{"subscription_id": sub.ID, "term_start": sub.TermEnd.Format(time.DateOnly), "webhook_status": resp.Status, "webhook_answer": json.RawMessage(resp.Body)})
}

func tick(ctx context.Context) error {
	pub, err := pubsub.NewClient(ctx, project())
	if err != nil {
		return err
	}
	defer pub.Close()
	id, err := demo.Tick(ctx, pub)
	if err != nil {
		return err
	}
	return printJSON(map[string]string{"topic": catalog.TopicRenewalTicks, "message_id": id})
}

// changeTypes maps the change commands to the command events renewal applies.
var changeTypes = map[string]string{
	"add-seats": catalog.CommandAddSeats, "change-plan": catalog.CommandChangePlan,
	"add-pack": catalog.CommandAddPack, "auto-renew": catalog.CommandSetAutoRenew,
}

func change(ctx context.Context, name string, args []string) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var c catalog.Command
	fs.StringVar(&c.SubscriptionID, "sub", "", "subscription id")
	fs.IntVar(&c.Seats, "seats", 0, "seats to add (add-seats)")
	fs.StringVar(&c.PlanCode, "plan", "", "plan code (change-plan)")
	fs.StringVar(&c.PackKind, "kind", "storage", "pack kind: storage or compute_minutes (add-pack)")
	fs.IntVar(&c.PackAmount, "amount", 0, "GB or minutes (add-pack)")
	fs.BoolVar(&c.AutoRenew, "on", true, "auto-renew on or off (auto-renew)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.SubscriptionID == "" {
		return errors.New(name + ": -sub is required")
	}
	c = onlyFor(name, c)
	pub, err := pubsub.NewClient(ctx, project())
	if err != nil {
		return err
	}
	defer pub.Close()
	id := fmt.Sprintf("cmd_%s_%d", name, time.Now().UnixNano())
	if err := demo.SendCommand(ctx, pub, id, changeTypes[name], c, now()); err != nil {
		return err
	}
	return printJSON(map[string]any{"command_id": id, "type": changeTypes[name], "command": c})
}

// onlyFor keeps the fields the command uses, so the event says what it asks.
func onlyFor(name string, c catalog.Command) catalog.Command {
	out := catalog.Command{SubscriptionID: c.SubscriptionID}
	switch name {
	case "add-seats":
		out.Seats = c.Seats
	case "change-plan":
		out.PlanCode = c.PlanCode
	case "add-pack":
		out.PackKind, out.PackAmount = c.PackKind, c.PackAmount
	case "auto-renew":
		out.AutoRenew = c.AutoRenew
	}
	return out
}

func seatReport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("seat-report", flag.ContinueOnError)
	var r seatusage.Report
	fs.StringVar(&r.NamespaceID, "namespace", "", "SaaS namespace id (an instance syncs through licensing's seat links; offline: import-usage)")
	fs.IntVar(&r.BillableUsersCount, "users", 0, "billable users that day")
	fs.StringVar(&r.Date, "date", now().Format(time.DateOnly), "report date")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r.MaxHistoricalUserCount = r.BillableUsersCount
	resp, err := demo.SendSeatReport(ctx, os.Getenv("SEAT_USAGE_URL"), envOr("SEAT_USAGE_TOKEN_KEY", localstack.SeatUsageTokenKey), r)
	if err != nil {
		return err
	}
	return printJSON(map[string]any{"status": resp.Status, "answer": json.RawMessage(resp.Body)})
}

// moveClock shows or moves the clock file every function of the local stack reads.
func moveClock(args []string) error {
	fs := flag.NewFlagSet("clock", flag.ContinueOnError)
	set := fs.String("set", "", "move to this RFC 3339 time")
	advance := fs.Duration("advance", 0, "move forward by this much (e.g. 720h)")
	real := fs.Bool("real", false, "back to real time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	path := os.Getenv(clock.FileEnv)
	if path == "" {
		return errors.New("clock: no " + clock.FileEnv + " (start the stack with make run)")
	}
	var err error
	switch {
	case *real:
		err = os.WriteFile(path, nil, 0o644)
	case *set != "":
		var t time.Time
		if t, err = time.Parse(time.RFC3339, *set); err == nil {
			err = clock.Set(path, t)
		}
	case *advance != 0:
		err = clock.Set(path, now().Add(*advance))
	}
	if err != nil {
		return err
	}
	return printJSON(map[string]string{"now": now().Format(time.RFC3339), "clock_file": path})
}

// now is the stack's time: the clock file when the stack has one.
// FULFILLMENT_CLOCK_FILE is an explicit setting of this operator CLI (make run
// writes it into .localstack/env), not a function's: the functions get the
// clock injected by the local stack's main, and production reads no clock file.
func now() time.Time { return clock.FromEnv().Now() }

// withSubscription opens the store and reads the subscription the command's
// one argument names, for do.
func withSubscription(ctx context.Context, args []string, command string, do func(*store.Store, *subscription.Subscription) error) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: %s SUBSCRIPTION_ID", command)
	}
	st, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	sub, err := st.Subscription(ctx, nil, args[0])
	if err != nil {
		return err
	}
	return do(st, sub)
}

func show(ctx context.Context, args []string) error {
	return withSubscription(ctx, args, "show", func(st *store.Store, sub *subscription.Subscription) error { return showSubscription(ctx, st, sub) })
}

func showSubscription(ctx context.Context, st *store.Store, sub *subscription.Subscription) error {
	history, err := st.SubscriptionHistory(ctx, sub.ID)
	if err != nil {
		return err
	}
	out := map[string]any{"subscription": sub, "history": history}
	for name, coll := range map[string]string{"entitlement": store.Entitlements, "crm_sync": store.CRMSync} {
		var doc map[string]any
		if err := st.Get(ctx, nil, coll, sub.ID, &doc); err == nil {
			out[name] = doc
		}
	}
	lic, err := store.All[map[string]any](ctx, st, docstore.Query{Collection: store.Licenses, Where: []docstore.Filter{{Field: "subscription_id", Op: docstore.Eq, Value: sub.ID}}})
	if err == nil && len(lic) > 0 {
		out["license"] = lic[len(lic)-1]
	}
	if code, err := revealCode(ctx, st, sub.ID); err == nil && code != nil {
		out["cloud_license"] = code // a self-managed subscription's activation code, once
	}
	return printJSON(out)
}

func calls(ctx context.Context, args []string) error {
	urls := map[string]string{
		"gitlab": "GITLAB_DOUBLE_URL", "salesforce": "SALESFORCE_DOUBLE_URL", "slack": "SLACK_DOUBLE_URL",
		"pagerduty": "PAGERDUTY_DOUBLE_URL", "stripe": "STRIPE_PROXY_URL",
	}
	if len(args) != 1 || urls[args[0]] == "" {
		return errors.New("usage: calls gitlab|salesforce|slack|pagerduty|stripe")
	}
	c, err := testdouble.FetchCalls(ctx, nil, os.Getenv(urls[args[0]]))
	if err != nil {
		return err
	}
	return printJSON(c)
}

func openStore(ctx context.Context) (*store.Store, error) { return firestore.OpenStore(ctx, project()) }

func project() string { return envOr("GOOGLE_CLOUD_PROJECT", localstack.DefaultProject) }

func webhookURL() string {
	return envOr("FULFILLMENT_WEBHOOK_URL", fmt.Sprintf("http://127.0.0.1:%d", localstack.DefaultWebhookPort))
}

func secret() string { return envOr("STRIPE_WEBHOOK_SECRET", localstack.WebhookSecret) }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// loadEnvFile sets what .localstack/env holds, unless already set.
func loadEnvFile() {
	root, err := localstack.RepoRoot()
	if err != nil {
		return
	}
	f, err := os.Open(filepath.Join(root, ".localstack", "env"))
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printLedger prints a subscription's billing ledger: every charge, what
// it bought, its outcome and whether it was granted, then the totals.
func printLedger(ctx context.Context, args []string) error {
	return withSubscription(ctx, args, "ledger", func(_ *store.Store, sub *subscription.Subscription) error { return ledgerTable(sub) })
}

func ledgerTable(sub *subscription.Subscription) error {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "QUOTED\tKEY\tKIND\tBUYS\tAMOUNT\tINVOICE\tOUTCOME\tAT\tGRANTED")
	for _, ln := range sub.Ledger {
		granted := "no"
		switch {
		case ln.Revoked:
			granted = "taken back"
		case ln.Granted:
			granted = "yes"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ln.QuotedAt.Format(time.DateOnly), ln.Key, ln.Kind, ln.Description,
			money(ln.AmountCents, ln.Currency), ln.InvoiceID, ln.Outcome, ln.OutcomeAt.Format(time.RFC3339), granted)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	sum := sub.Ledger.Sum()
	for cur, billed := range sum.Billed {
		fmt.Printf("billed %s, paid %s, refunded %s\n", money(billed, cur), money(sum.Paid[cur], cur), money(sum.Refunded[cur], cur))
	}
	for _, ln := range sub.Ledger.Uncovered() {
		fmt.Printf("NOT COVERED: %s granted while %s\n", ln.Key, ln.Outcome)
	}
	return nil
}

func money(cents int64, currency string) string {
	return fmt.Sprintf("%d.%02d %s", cents/100, cents%100, strings.ToUpper(currency))
}
