// Package notifications tells customers what happens to their subscription:
// e-mail over SMTP for every moment that matters (receipts, notices,
// failures, warnings, the end) and in-app notices through GitLab's internal
// API where GitLab has one (upcoming reconciliations). What is said to whom
// is decided by shared/domain/notice; this function sends it, exactly once in
// effect: each e-mail's Message-ID is derived from the event and the moment,
// and every accepted e-mail is recorded, so a redelivery sends nothing twice.
package notifications

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/gitlab"
	"fulfillment/shared/adapters/mail"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/clock"
	"fulfillment/shared/domain/notice"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/runtime/logging"
	"fulfillment/shared/runtime/telemetry"
)

// Name is the function's name in logs, FUNCTION_TARGET and deployments.
const Name = "notifications"

// Headers every e-mail carries besides the usual ones: what it is about.
const (
	HeaderKind         = "X-Fulfillment-Notice"
	HeaderSubscription = "X-Fulfillment-Subscription"
)

// Mailer sends one e-mail; its error's class decides delivery.
type Mailer interface {
	Send(ctx context.Context, m mail.Message) error
}

// InApp puts in-app notices into GitLab.
type InApp interface {
	PutUpcomingReconciliations(ctx context.Context, entries []gitlab.UpcomingReconciliation) error
}

// Deps are what notifications needs.
type Deps struct {
	Store           *store.Store
	Publisher       pubsub.Publisher
	DeadLetterTopic string
	Logger          *slog.Logger
	Close           func() error
	Mailer          Mailer
	// InApp is nil where no GitLab admin token is configured: no in-app notices.
	InApp  InApp
	Clock  clock.Clock
	Policy subscription.Policy
	// PortalURL is the customer portal the e-mails link to.
	PortalURL string
	// MessageIDDomain is the right-hand side of every Message-ID.
	MessageIDDomain string
}

// Function is notifications.
type Function struct {
	consumer.Base
	d Deps
}

// New returns notifications.
func New(d Deps) *Function {
	if d.Clock == nil {
		d.Clock = clock.System{}
	}
	if d.MessageIDDomain == "" {
		d.MessageIDDomain = "notifications.fulfillment.invalid"
	}
	f := &Function{d: d}
	routes := map[string]consumer.HandlerFunc{}
	for _, typ := range notice.Handles {
		routes[typ] = f.NotifyOnEvent
	}
	f.Base = consumer.Base{OnClose: d.Close, Processor: &consumer.Processor{
		Name: Name, Journal: d.Store, Publisher: d.Publisher, DeadLetterTopic: d.DeadLetterTopic, Logger: d.Logger, Routes: routes,
	}}
	return f
}

// NotifyOnEvent decides what the event tells the customer, then sends it
// before the delivery is recorded as processed.
func (f *Function) NotifyOnEvent(ctx context.Context, in event.Event) error {
	account, err := f.account(ctx, in)
	if err != nil {
		return err
	}
	d, err := notice.Decide(notice.Input{Type: in.Type(), Data: in.Data(), Now: f.d.Clock.Now(), Account: account, Policy: f.d.Policy, PortalURL: f.d.PortalURL})
	if err != nil {
		return err
	}
	work := consumer.AfterEffect(func(ctx context.Context) error { return f.send(ctx, in, d) },
		func(context.Context, store.Tx) ([]consumer.Outgoing, error) { return nil, nil })
	// Two deliveries of one event at once (a redelivery while the first is
	// still sending) must not both find "not sent yet": a lease on the event
	// lets one send at a time. Every event is told: no version ordering.
	work.Serialize = "event-" + cloudevent.Key(in)
	return f.Processor.Once(ctx, in, work)
}

// account reads what the event does not carry (currency, dunning dates,
// the billing contact of a payment failure) from the subscription, when the
// event names one that exists.
func (f *Function) account(ctx context.Context, in event.Event) (notice.Account, error) {
	var ref struct {
		ID             string `json:"id"`
		SubscriptionID string `json:"subscription_id"`
	}
	_ = json.Unmarshal(in.Data(), &ref) // an undecodable payload is Decide's to refuse
	id := ref.SubscriptionID
	if id == "" {
		id = ref.ID
	}
	if id == "" {
		return notice.Account{}, nil
	}
	sub, err := f.d.Store.Subscription(ctx, nil, id)
	switch {
	case store.IsNotFound(err):
		return notice.Account{}, nil
	case err != nil:
		return notice.Account{}, fmt.Errorf("notifications.account: %w", err)
	}
	return notice.Account{Currency: sub.ChargeCurrency(), Dunning: sub.Dunning, Customer: sub.Customer, PlanCode: sub.Order.PlanCode}, nil
}

// send delivers the decision: each e-mail not sent before and wanted by the
// customer, then the in-app notices (an upsert in GitLab: a repeat is
// harmless). An e-mail is recorded as soon as the server accepts it, so a
// redelivery after a later failure does not send it again.
func (f *Function) send(ctx context.Context, in event.Event, d notice.Decision) error {
	log := logging.FromContext(ctx)
	for _, e := range d.Emails {
		id := MessageID(in, e.Kind, f.d.MessageIDDomain)
		sent, err := f.d.Store.NoticeWasSent(ctx, id)
		if err != nil {
			return fmt.Errorf("notifications.send: %w", err)
		}
		if sent {
			log.InfoContext(ctx, "notice already sent", "kind", e.Kind, "subscription", e.Data.SubscriptionID)
			continue
		}
		if !e.Essential {
			pref, err := f.d.Store.NoticePreferenceFor(ctx, e.To.Email)
			if err != nil {
				return fmt.Errorf("notifications.send: %w", err)
			}
			if pref.OptOutNonEssential {
				log.InfoContext(ctx, "customer opted out of non-essential notices; not sent", "kind", e.Kind, "subscription", e.Data.SubscriptionID)
				continue
			}
		}
		text, html, err := notice.Render(e)
		if err != nil {
			return err
		}
		err = f.d.Mailer.Send(ctx, mail.Message{MessageID: id, To: e.To.Email, ToName: e.To.Name, Subject: e.Subject, Text: text, HTML: html,
			Date: f.d.Clock.Now(), Headers: map[string]string{HeaderKind: string(e.Kind), HeaderSubscription: e.Data.SubscriptionID}})
		telemetry.CallDone(ctx, "smtp", "send", err)
		if err != nil {
			return err
		}
		if err := f.d.Store.RecordNoticeSent(ctx, store.NoticeSent{MessageID: id, Kind: string(e.Kind), SubscriptionID: e.Data.SubscriptionID,
			EventID: in.ID(), SentAt: f.d.Clock.Now()}); err != nil {
			// Sent but not recorded: the redelivery sends it again with the
			// same Message-ID, which mail clients fold into one.
			return fmt.Errorf("notifications.send: record: %w", err)
		}
		log.InfoContext(ctx, "notice sent", "kind", e.Kind, "subscription", e.Data.SubscriptionID)
	}
	if len(d.Reconciliations) > 0 && f.d.InApp != nil {
		entries := make([]gitlab.UpcomingReconciliation, 0, len(d.Reconciliations))
		for _, r := range d.Reconciliations {
			entries = append(entries, gitlab.UpcomingReconciliation{NamespaceID: r.NamespaceID,
				NextReconciliationDate: r.NextReconciliationDate.Format(time.DateOnly), DisplayAlertFrom: r.DisplayAlertFrom.Format(time.DateOnly)})
		}
		err := f.d.InApp.PutUpcomingReconciliations(ctx, entries)
		telemetry.CallDone(ctx, "gitlab", "upcoming_reconciliations", err)
		if err != nil {
			return err
		}
	}
	return nil
}

// MessageID is the e-mail's Message-ID: derived from the event (source and
// id) and the moment, so every delivery of the event names the same message.
func MessageID(in event.Event, k notice.Kind, domain string) string {
	sum := sha256.Sum256([]byte(in.Source() + "\x00" + in.ID() + "\x00" + string(k)))
	return hex.EncodeToString(sum[:16]) + "@" + domain
}
