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
	"errors"
	"fmt"
	"log/slog"
	"maps"
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
	"fulfillment/shared/runtime/failure"
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
	// PreferencesKey signs the opt-out links of non-essential e-mails, which
	// point at UnsubscribeURL (served at UnsubscribePath); without a key
	// there are none.
	PreferencesKey []byte
	UnsubscribeURL string
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
	routes[pubSubTick] = f.SweepPendingOnTick
	routes[knativeTick] = f.SweepPendingOnTick
	f.Base = consumer.Base{OnClose: d.Close, Processor: &consumer.Processor{
		Name: Name, Journal: d.Store, Publisher: d.Publisher, DeadLetterTopic: d.DeadLetterTopic, Logger: d.Logger, Routes: routes,
	}}
	return f
}

// NotifyOnEvent decides what the event tells the customer, then sends it
// before the delivery is recorded as processed.
func (f *Function) NotifyOnEvent(ctx context.Context, in event.Event) error {
	// The subscription the event names, if it exists, holds what the event
	// does not carry; it is read under the lease with the dedupe record.
	var sub subscription.Subscription
	var read []*store.Read
	if id := subscriptionOf(in); id != "" {
		read = []*store.Read{{Collection: store.Subscriptions, ID: id, Into: &sub}}
	}
	work := consumer.EffectOnly(func(ctx context.Context) error {
		var account notice.Account
		if len(read) > 0 && read[0].Found {
			account = notice.Account{Currency: sub.ChargeCurrency(), Dunning: sub.Dunning, Customer: sub.Customer, PlanCode: sub.Order.PlanCode}
		}
		d, err := notice.Decide(notice.Input{Type: in.Type(), Data: in.Data(), Now: f.d.Clock.Now(), Account: account, Policy: f.d.Policy, PortalURL: f.d.PortalURL})
		if err != nil {
			return err
		}
		return f.send(ctx, in, d)
	})
	// Two deliveries of one event at once (a redelivery while the first is
	// still sending) must not both find "not sent yet": a lease on the event
	// lets one send at a time. Every event is told: no version ordering.
	work.Serialize = "event-" + cloudevent.Key(in)
	work.Prefetch = read
	return f.Processor.Once(ctx, in, work)
}

// subscriptionOf is the id of the subscription the event names, "" for
// none: what the event does not carry (currency, dunning dates, the billing
// contact of a payment failure) is read from it.
func subscriptionOf(in event.Event) string {
	var ref struct {
		ID             string `json:"id"`
		SubscriptionID string `json:"subscription_id"`
	}
	_ = json.Unmarshal(in.Data(), &ref) // an undecodable payload is Decide's to refuse
	if ref.SubscriptionID != "" {
		return ref.SubscriptionID
	}
	return ref.ID
}

// send delivers the decision: each e-mail not sent before and wanted by the
// customer, then the in-app notices (an upsert in GitLab: a repeat is
// harmless).
func (f *Function) send(ctx context.Context, in event.Event, d notice.Decision) error {
	for _, e := range d.Emails {
		if err := f.sendEmail(ctx, in, e); err != nil {
			return err
		}
	}
	return f.putInApp(ctx, d.Reconciliations)
}

// sendEmail sends one e-mail unless it was sent, is parked, or is muted by
// the customer. An e-mail is recorded as soon as the server accepts it, so
// a redelivery after a later failure does not send it again. One the server
// cannot take now (down, 4xx) is parked for the sweep and the delivery goes
// on: Pub/Sub's budget (10 attempts, about 5 minutes) is shorter than an
// SMTP outage may be, and a parked notice waits for the server, not for a
// person to replay a dead letter.
func (f *Function) sendEmail(ctx context.Context, in event.Event, e notice.Email) error {
	log := logging.FromContext(ctx).With("kind", e.Kind, "subscription", e.Data.SubscriptionID)
	id := MessageID(in, e.Kind, f.d.MessageIDDomain)
	if owned, err := f.alreadyHandled(ctx, id); err != nil || owned {
		return err
	}
	if !e.Essential {
		pref, err := f.d.Store.NoticePreferenceFor(ctx, e.To.Email)
		if err != nil {
			return fmt.Errorf("notifications.send: %w", err)
		}
		if pref.OptOutNonEssential {
			log.InfoContext(ctx, "customer opted out of non-essential notices; not sent")
			return nil
		}
	}
	m, err := f.message(id, &e)
	if err != nil {
		return err
	}
	err = f.deliver(ctx, m)
	// What the send's outcome calls for is written even when the send used
	// up the delivery's budget (a server that timed out): otherwise every
	// redelivery would time out the same way and the notice end as a dead
	// letter after all.
	after, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordBudget)
	defer cancel()
	switch {
	case err == nil:
		return f.recordSent(after, m, in.ID())
	case failure.IsPermanent(err):
		return err
	}
	if perr := f.d.Store.ParkNotice(after, parked(m, in.ID(), f.d.Clock.Now(), err)); perr != nil {
		return fmt.Errorf("notifications.send: park after %w: %w", err, perr) // transient: Pub/Sub redelivers
	}
	log.Log(ctx, parkLevel(err), "SMTP server cannot take the notice now; parked for the sweep", "error", err.Error())
	return nil
}

// recordBudget bounds the write after a send (its record, or its parking).
// The send runs within the consumer's 15 s effect budget under the event's
// 20 s lease; the write must end before the lease does, or a redelivery
// taking the lease could find the e-mail neither recorded nor parked and
// send it again.
const recordBudget = 3 * time.Second

// parkLevel is how loud a parked notice is: an error (alerted on) when the
// server refuses our sender or credentials, which only a fix ends; a
// warning for an outage, which ends by itself.
func parkLevel(err error) slog.Level {
	if errors.Is(err, mail.ErrConfiguration) {
		return slog.LevelError
	}
	return slog.LevelWarn
}

// alreadyHandled reports whether the e-mail was sent, or is parked (the
// sweep owns it then: a redelivery sending it too could send it twice).
func (f *Function) alreadyHandled(ctx context.Context, id string) (bool, error) {
	sent, parked, err := f.d.Store.NoticeSentOrParked(ctx, id)
	return sent || parked, wrap("notifications.send", err)
}

// message renders the e-mail with its Message-ID and headers, and the
// opt-out link when it is not essential.
func (f *Function) message(id string, e *notice.Email) (mail.Message, error) {
	headers := map[string]string{HeaderKind: string(e.Kind), HeaderSubscription: e.Data.SubscriptionID}
	maps.Copy(headers, f.unsubscribe(e))
	text, html, err := notice.Render(*e)
	if err != nil {
		return mail.Message{}, err
	}
	return mail.Message{MessageID: id, To: e.To.Email, ToName: e.To.Name, Subject: e.Subject, Text: text, HTML: html,
		Date: f.d.Clock.Now(), Headers: headers}, nil
}

// deliver hands m to the SMTP server, counted in telemetry.
func (f *Function) deliver(ctx context.Context, m mail.Message) error {
	err := f.d.Mailer.Send(ctx, m)
	telemetry.CallDone(ctx, "smtp", "send", err)
	return err
}

// recordSent records an e-mail the server accepted. Sent but not recorded
// (this write failed), the redelivery sends it again with the same
// Message-ID; nothing better is possible once SMTP has taken it.
func (f *Function) recordSent(ctx context.Context, m mail.Message, eventID string) error {
	err := f.d.Store.RecordNoticeSent(ctx, store.NoticeSent{MessageID: m.MessageID, Kind: m.Headers[HeaderKind],
		SubscriptionID: m.Headers[HeaderSubscription], EventID: eventID, SentAt: f.d.Clock.Now()})
	if err != nil {
		return fmt.Errorf("notifications.send: record: %w", err)
	}
	logging.FromContext(ctx).InfoContext(ctx, "notice sent", "kind", m.Headers[HeaderKind], "subscription", m.Headers[HeaderSubscription])
	return nil
}

// putInApp sends the upcoming reconciliations to GitLab, when configured.
func (f *Function) putInApp(ctx context.Context, recs []notice.UpcomingReconciliation) error {
	if len(recs) == 0 || f.d.InApp == nil {
		return nil
	}
	entries := make([]gitlab.UpcomingReconciliation, 0, len(recs))
	for _, r := range recs {
		entries = append(entries, gitlab.UpcomingReconciliation{NamespaceID: r.NamespaceID,
			NextReconciliationDate: r.NextReconciliationDate.Format(time.DateOnly), DisplayAlertFrom: r.DisplayAlertFrom.Format(time.DateOnly)})
	}
	err := f.d.InApp.PutUpcomingReconciliations(ctx, entries)
	telemetry.CallDone(ctx, "gitlab", "upcoming_reconciliations", err)
	return err
}

func wrap(where string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", where, err)
}

// MessageID is the e-mail's Message-ID: derived from the event (source and
// id) and the moment, so every delivery of the event names the same message.
func MessageID(in event.Event, k notice.Kind, domain string) string {
	sum := sha256.Sum256([]byte(in.Source() + "\x00" + in.ID() + "\x00" + string(k)))
	return hex.EncodeToString(sum[:16]) + "@" + domain
}
