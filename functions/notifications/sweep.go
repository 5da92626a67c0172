package notifications

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/mail"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/failure"
	"fulfillment/shared/runtime/logging"
)

// The ticks that start a sweep: Cloud Scheduler's job notices-sweep
// publishes a bare message on subscription-events (a messagePublished event
// with no CloudEvent inside), Knative's PingSource notices-sweep a ping.
const (
	pubSubTick  = cloudevent.PubSubMessagePublished
	knativeTick = "dev.knative.sources.ping"
)

// sweepBatch bounds one sweep; the next tick takes the rest.
const sweepBatch = 200

// claimTTL is how long a sweep holds a parked e-mail; sendBudget, shorter,
// bounds its send, so a slow server cannot make two sweeps overlap on one.
const (
	claimTTL   = 60 * time.Second
	sendBudget = 30 * time.Second
)

// SweepResult is what one sweep did.
type SweepResult struct {
	Sent, StillPending, Refused int
}

// SweepPendingOnTick sends the e-mails parked during an SMTP outage. A
// failed sweep is retried by the next tick as well as by Pub/Sub.
func (f *Function) SweepPendingOnTick(ctx context.Context, _ event.Event) error {
	res, err := f.SweepPendingNotices(ctx)
	logging.FromContext(ctx).InfoContext(ctx, "pending notices swept", "sent", res.Sent, "still_pending", res.StillPending, "refused", res.Refused)
	return err
}

// SweepPendingNotices sends each parked e-mail, with its Message-ID, once:
// each is claimed by one sweep at a time, recorded in notices_sent when the
// server takes it, and only then removed from notices_pending.
func (f *Function) SweepPendingNotices(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	pending, err := f.d.Store.PendingNotices(ctx, sweepBatch)
	if err != nil {
		return res, fmt.Errorf("notifications.SweepPendingNotices: %w", err)
	}
	for i, p := range pending {
		outcome, err := f.sweepOne(ctx, p.MessageID)
		if err != nil {
			return res, fmt.Errorf("notifications.SweepPendingNotices: %w", err)
		}
		switch outcome {
		case sweptSent:
			res.Sent++
		case sweptRefused:
			res.Refused++
		case sweptDeferred:
			res.StillPending++ // this one alone: a full mailbox, greylisting
		case sweptPending:
			// The server still cannot take mail: the rest wait for the next
			// tick rather than each wait out a timeout now.
			res.StillPending += len(pending) - i
			return res, nil
		}
	}
	return res, nil
}

type sweepOutcome int

const (
	sweptNothing sweepOutcome = iota // another sweep has it, or had it
	sweptSent
	sweptPending // the server takes no mail now: the rest wait too
	sweptRefused
	sweptDeferred // this notice alone is put off (a 4xx about its recipient)
)

// sweepOne sends one parked e-mail under its claim.
func (f *Function) sweepOne(ctx context.Context, messageID string) (sweepOutcome, error) {
	holder := rand.Text()
	claimed, err := f.d.Store.ClaimPendingNotice(ctx, messageID, holder, claimTTL)
	if err != nil || !claimed {
		return sweptNothing, err
	}
	defer func() { _ = f.d.Store.ReleasePendingNotice(context.WithoutCancel(ctx), messageID, holder) }()
	// Read again under the claim: a sweep that held it before may have sent
	// it (and crashed before settling) or settled it since the listing.
	p, found, err := f.d.Store.PendingNotice(ctx, messageID)
	if err != nil || !found || p.Refused {
		return sweptNothing, err
	}
	switch sent, err := f.d.Store.NoticeWasSent(ctx, messageID); {
	case err != nil:
		return sweptNothing, err
	case sent:
		return sweptNothing, f.d.Store.SettlePendingNotice(ctx, messageID)
	}
	return f.resend(ctx, p)
}

// resend sends the parked e-mail and records what came of it.
func (f *Function) resend(ctx context.Context, p store.NoticePending) (sweepOutcome, error) {
	log := logging.FromContext(ctx).With("kind", p.Kind, "subscription", p.SubscriptionID)
	sendCtx, cancel := context.WithTimeout(ctx, sendBudget)
	m := unparked(p)
	err := f.deliver(sendCtx, m)
	cancel()
	ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), recordBudget) // as after a delivery's send
	defer cancel()
	switch {
	case err == nil:
		if err := f.recordSent(ctx, m, p.EventID); err != nil {
			return sweptNothing, err
		}
		return sweptSent, f.d.Store.SettlePendingNotice(ctx, p.MessageID)
	case failure.IsPermanent(err):
		// The server now refuses it for good (a mailbox gone meanwhile):
		// kept, marked, for a person; not resent by every tick.
		log.WarnContext(ctx, "parked notice refused by the SMTP server; kept as refused", "error", err.Error())
		return sweptRefused, f.d.Store.NotePendingFailure(ctx, p, failure.Scrub(err.Error()), true)
	}
	log.Log(ctx, parkLevel(err), "SMTP server still cannot take the parked notice", "error", err.Error())
	outcome := sweptDeferred
	if mail.ServerFailure(err) {
		outcome = sweptPending
	}
	return outcome, f.d.Store.NotePendingFailure(ctx, p, failure.Scrub(err.Error()), false)
}

// parked is the e-mail m kept for the sweep, after the send that failed.
func parked(m mail.Message, eventID string, at time.Time, cause error) store.NoticePending {
	return store.NoticePending{MessageID: m.MessageID, Kind: m.Headers[HeaderKind], SubscriptionID: m.Headers[HeaderSubscription], EventID: eventID,
		To: m.To, ToName: m.ToName, Subject: m.Subject, Text: m.Text, HTML: m.HTML, Headers: m.Headers, Date: m.Date, ParkedAt: at,
		LastError: failure.Scrub(cause.Error())}
}

// unparked is the parked e-mail as it is sent again: same Message-ID, Date
// and content.
func unparked(p store.NoticePending) mail.Message {
	return mail.Message{MessageID: p.MessageID, To: p.To, ToName: p.ToName, Subject: p.Subject, Text: p.Text, HTML: p.HTML,
		Date: p.Date, Headers: p.Headers}
}
