package renewal

import (
	"context"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/store"
	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/idempotency"
	"fulfillment/shared/domain/ledger"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/runtime/failure"
)

// ChangeOnCommand applies an operator's subscription change. Seats added, an
// upgrade and a pack are purchases: each is quoted first (priced, checked on
// a copy and stored in the subscription's ledger under the command's key, in
// a transaction of its own), then exactly the stored line is charged, and
// what it buys is granted when the provider says it is paid (payment-result,
// on invoice.paid). A refused purchase is dead-lettered with nothing
// charged; a purchase that costs nothing (the term's last day) is granted at
// once. A downgrade (at the next term) and auto-renew on or off charge
// nothing and apply at once.
func (f *Function) ChangeOnCommand(ctx context.Context, in event.Event) error {
	var cmd catalog.Command
	if err := cloudevent.DecodeData(in, &cmd); err != nil {
		return err
	}
	sub, err := f.d.Store.Subscription(ctx, nil, cmd.SubscriptionID)
	if err != nil {
		return err
	}
	at := in.Time()
	if at.IsZero() {
		at = f.d.Clock.Now()
	}
	add, ok := purchase(in.Type(), cmd, sub, at)
	if !ok {
		apply := change(in.Type(), cmd, at)
		return f.once(ctx, in, sub.ID, consumer.Work{Apply: f.mutate(in, sub.ID,
			func(s *subscription.Subscription, _ time.Time) (subscription.Change, error) { return apply(s) })})
	}
	key := idempotency.Change(in.ID())
	line := sub.Ledger.Find(key)
	if line == nil {
		quoted, _, err := f.d.Store.UpdateSubscription(ctx, sub.ID, quoteCause(in),
			func(s *subscription.Subscription) (subscription.Change, error) {
				if s.Ledger.Find(key) != nil {
					return noOp(s, "already quoted"), nil
				}
				ln, err := s.Quote(key, add, at)
				if err != nil {
					return subscription.Change{}, err
				}
				return quotedChange(s, ln), nil
			})
		if err != nil {
			return err
		}
		if line = quoted.Ledger.Find(key); line == nil {
			return failure.Permanentf("renewal: quote %s not stored", key)
		}
	}
	return f.once(ctx, in, sub.ID, f.chargeLine(in, sub, *line, at))
}

// chargeLine charges exactly the stored line ln and records it sent (with
// its invoice indexed for the provider's answers); nothing is granted until
// the provider says it is paid. A line of 0 cents charges nothing and is
// granted as paid at once. An unanswered pay call is recorded unknown, to
// be settled by asking the provider, never charged again blindly.
func (f *Function) chargeLine(in event.Event, sub *subscription.Subscription, ln ledger.Line, at time.Time) consumer.Work {
	return consumer.WithEffect(
		func(ctx context.Context) (raised, error) {
			if ln.AmountCents == 0 {
				return raised{}, nil
			}
			return f.charge(ctx, sub, ln)
		},
		func(ctx context.Context, tx store.Tx, r raised) ([]consumer.Outgoing, error) {
			return f.mutateTx(in, sub.ID, func(tx store.Tx, s *subscription.Subscription, now time.Time) (subscription.Change, error) {
				if ln.AmountCents == 0 {
					return s.ApplyChargeOutcome(ln.Key, "", ledger.Paid, 0, at), nil
				}
				return f.sent(tx, s, ln.Key, r, now)
			})(ctx, tx)
		})
}

// charge makes the call for the stored line ln: its amount, currency,
// description and key, as quoted. A subscription bought as a guest (a
// payment-mode checkout with no customer) first gets a Stripe customer,
// which has no saved card: its invoice is sent for manual payment.
func (f *Function) charge(ctx context.Context, sub *subscription.Subscription, ln ledger.Line) (raised, error) {
	var r raised
	bill := lineBill(sub, ln)
	if bill.CustomerID == "" {
		c := sub.Customer
		id, err := f.d.Billing.CreateCustomer(ctx, stripe.CustomerRequest{Email: c.Email, Name: c.Name, Key: "customer-" + sub.ID, SubscriptionID: sub.ID})
		if err != nil {
			return r, err
		}
		bill.CustomerID, bill.SendInvoice, r.customerID = id, true, id
	}
	invoiceID, err := f.d.Billing.Charge(ctx, bill)
	if id, ok := stripe.IsOutcomeUnknown(err); ok {
		r.invoiceID, r.unknown = id, true
		return r, nil
	}
	r.invoiceID = invoiceID
	return r, err
}

// sent records in tx that the line under key was charged on r's invoice
// (and the customer created for it), and indexes the invoice to the line
// for the provider's answers.
func (f *Function) sent(tx store.Tx, s *subscription.Subscription, key string, r raised, now time.Time) (subscription.Change, error) {
	if s.Customer.ProviderCustomerID == "" {
		s.Customer.ProviderCustomerID = r.customerID
	}
	c := s.ChargeSent(key, r.invoiceID, r.unknown, now)
	if err := f.d.Store.SavePaymentRef(tx, r.invoiceID, store.PaymentRef{SubscriptionID: s.ID, Key: key, InvoiceID: r.invoiceID}); err != nil {
		return subscription.Change{}, err
	}
	return c, nil
}

// quoteCause names a quote's transaction in the subscription's history: the
// input's, under a key of its own (the input's consumer key records the charge).
func quoteCause(in event.Event) store.Cause {
	return store.Cause{Type: in.Type(), ID: in.ID(), Key: "quote_" + cloudevent.Key(in)}
}

func quotedChange(s *subscription.Subscription, ln *ledger.Line) subscription.Change {
	return subscription.Change{From: s.Status, To: s.Status,
		Reason: fmt.Sprintf("quoted %s %s: %d %s for %s", ln.Kind, ln.Key, ln.AmountCents, ln.Currency, ln.Description)}
}

// purchase is the addition a command buys, if it is one: seats added, an
// upgrade (a plan that costs more) or a pack.
func purchase(typ string, cmd catalog.Command, s *subscription.Subscription, at time.Time) (subscription.Addition, bool) {
	switch typ {
	case catalog.CommandAddSeats:
		return subscription.Addition{Kind: ledger.Seats, Seats: cmd.Seats}, true
	case catalog.CommandAddPack:
		return subscription.Addition{Kind: ledger.Pack, PackKind: cmd.PackKind, PackAmount: cmd.PackAmount}, true
	case catalog.CommandChangePlan:
		trial := *s
		if _, err := trial.ChangePlan(cmd.PlanCode, at); err == nil && s.Order.PlanCode != cmd.PlanCode && trial.Order.PlanCode == cmd.PlanCode {
			return subscription.Addition{Kind: ledger.Upgrade, PlanCode: cmd.PlanCode}, true
		}
	}
	return subscription.Addition{}, false
}

// change is the state change of a command that buys nothing: a downgrade,
// auto-renew on or off (and a plan change refused or already made).
func change(typ string, cmd catalog.Command, at time.Time) func(*subscription.Subscription) (subscription.Change, error) {
	return func(s *subscription.Subscription) (subscription.Change, error) {
		switch typ {
		case catalog.CommandChangePlan:
			to := s.Order.PlanCode
			c, err := s.ChangePlan(cmd.PlanCode, at)
			if err == nil && s.Order.PlanCode != to {
				// It became an upgrade since it was looked at: that is a purchase.
				return subscription.Change{}, failure.Permanentf("change to %s is an upgrade now: send it again", cmd.PlanCode)
			}
			return c, err
		case catalog.CommandSetAutoRenew:
			return s.SetAutoRenew(cmd.AutoRenew, at)
		}
		return subscription.Change{}, failure.Permanentf("unknown command %s", typ)
	}
}
