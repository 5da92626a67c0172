// Package renewal runs each subscription's year. On every Cloud Scheduler
// tick it fans out one renewal-due event per subscription whose review time
// has come (paged queries, so a tick scales to any number), and on each
// renewal-due event it runs the steps that fell due: the renewal notice, the
// renewal charge (once per term, whatever the number of ticks), quarterly
// reconciliation notices and true-up invoices, dunning retries, grace,
// suspension, cancellation and expiry. It also applies the operator's
// subscription changes (seats, plan, packs, auto-renew) with their prorated
// charges. Payment results come back through the provider's webhook.
package renewal

import (
	"context"
	"log/slog"

	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/clock"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
)

// Name is the function's name in logs, FUNCTION_TARGET and deployments.
const Name = "renewal"

// Biller charges through the payment provider.
type Biller interface {
	Charge(ctx context.Context, b stripe.Bill) (invoiceID string, err error)
	RetryPayment(ctx context.Context, invoiceID, key string) error
	// InvoiceState says where an invoice is and which payment intent paid it.
	InvoiceState(ctx context.Context, invoiceID string) (stripe.InvoiceState, error)
	// CreateCustomer creates a Stripe customer (a guest checkout had none).
	CreateCustomer(ctx context.Context, c stripe.CustomerRequest) (string, error)
	// VoidInvoice voids an unpaid invoice (a renewal declined by turning
	// auto-renew off); key names the call.
	VoidInvoice(ctx context.Context, invoiceID, key string) error
}

// Deps are what renewal needs.
type Deps struct {
	Store     *store.Store
	Publisher pubsub.Publisher
	// FanOut publishes the renewal-due events of a tick (default Publisher):
	// the platform's publisher, Batched, in production.
	FanOut          pubsub.Publisher
	Billing         Biller
	Policy          subscription.Policy
	Clock           clock.Clock
	PageSize        int // subscriptions per fan-out query page (default 500)
	PagesPerRun     int // pages one delivery handles before handing on (default 40)
	DeadLetterTopic string
	Logger          *slog.Logger
	Close           func() error
}

// Function is renewal.
type Function struct {
	consumer.Base
	d Deps
}

// New returns renewal.
func New(d Deps) *Function {
	if d.Clock == nil {
		d.Clock = clock.System{}
	}
	if d.Policy.NoticeLead == 0 && d.Policy.ChargeLead == 0 && d.Policy.RetryDays == nil {
		d.Policy = subscription.DefaultPolicy()
	}
	if d.FanOut == nil {
		d.FanOut = d.Publisher
	}
	if d.PageSize <= 0 {
		d.PageSize = 500
	}
	if d.PagesPerRun <= 0 {
		d.PagesPerRun = 40
	}
	f := &Function{d: d}
	f.Base = consumer.Base{OnClose: d.Close, Processor: &consumer.Processor{
		Name: Name, Journal: d.Store, Publisher: d.Publisher, DeadLetterTopic: d.DeadLetterTopic, Logger: d.Logger,
		Routes: map[string]consumer.HandlerFunc{
			// A Scheduler tick is a plain Pub/Sub message: it arrives as messagePublished.
			cloudevent.PubSubMessagePublished: f.FanOutOnTick,
			"dev.knative.sources.ping":        f.FanOutOnTick, // a PingSource tick on Knative
			catalog.RenewalFanOutPage:         f.FanOutOnPage,
			catalog.RenewalDue:                f.RunStepsOnDue,
			catalog.CommandAddSeats:           f.ChangeOnCommand,
			catalog.CommandChangePlan:         f.ChangeOnCommand,
			catalog.CommandAddPack:            f.ChangeOnCommand,
			catalog.CommandSetAutoRenew:       f.ChangeOnCommand,
		},
	}}
	return f
}
