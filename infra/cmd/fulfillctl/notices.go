package main

import (
	"context"
	"errors"
	"flag"
	"time"

	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
)

// notices shows or sets a customer's notification preference: opted out of
// non-essential notices (renewal and reconciliation notices, trial
// reminders) or not. Receipts, payment failures, grace and suspension
// warnings, cancellation and expiry are always sent. The customer is named
// by e-mail, or by a subscription whose billing contact it is; the
// address is never printed.
func notices(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("notices", flag.ContinueOnError)
	email := fs.String("email", "", "the customer's e-mail address")
	sub := fs.String("sub", "", "a subscription id: its billing contact")
	optOut := fs.Bool("opt-out", false, "stop non-essential notices")
	optIn := fs.Bool("opt-in", false, "send non-essential notices again")
	sweep := fs.Bool("sweep", false, "publish the sweep tick: send the e-mails parked during an SMTP outage")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sweep {
		return sweepTick(ctx)
	}
	if (*email == "") == (*sub == "") || (*optOut && *optIn) {
		return errors.New("usage: notices -email ADDRESS | -sub ID [-opt-out | -opt-in] | -sweep")
	}
	st, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	out, err := notePreference(ctx, st, *email, *sub, *optOut, *optIn)
	if err != nil {
		return err
	}
	return printJSON(out)
}

// notePreference reads, and with optOut or optIn sets, the preference of
// the customer named by email or by subscription sub's billing contact. What
// it returns is printed: the contact key, never the address.
func notePreference(ctx context.Context, st *store.Store, email, sub string, optOut, optIn bool) (map[string]any, error) {
	contact := email
	if sub != "" {
		s, err := st.Subscription(ctx, nil, sub)
		if err != nil {
			return nil, err
		}
		if contact = s.Customer.Email; contact == "" {
			return nil, errors.New("the subscription has no billing contact")
		}
	}
	pref, err := st.NoticePreferenceFor(ctx, contact)
	if err != nil {
		return nil, err
	}
	if optOut || optIn {
		pref = store.NoticePreference{OptOutNonEssential: optOut, UpdatedAt: time.Now().UTC()}
		if err := st.SaveNoticePreference(ctx, contact, pref); err != nil {
			return nil, err
		}
	}
	return map[string]any{
		"contact_key":           store.ContactKey(contact),
		"opt_out_non_essential": pref.OptOutNonEssential,
		"always_sent":           "receipts, payment failures, grace and suspension warnings, cancellation, expiry, activation codes, license sync warnings",
		"updated_at":            pref.UpdatedAt,
	}, nil
}

// sweepTick publishes what Cloud Scheduler's notices-sweep job publishes: a
// bare message on notifications' topic. The local stack has no scheduler.
func sweepTick(ctx context.Context) error {
	pub, err := pubsub.NewClient(ctx, project())
	if err != nil {
		return err
	}
	defer pub.Close()
	id, err := pub.PublishRaw(ctx, catalog.TopicSubscriptionEvents, []byte(`{"job":"notices-sweep"}`), nil)
	if err != nil {
		return err
	}
	return printJSON(map[string]string{"topic": catalog.TopicSubscriptionEvents, "message_id": id})
}
