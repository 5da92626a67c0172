package renewal

import (
	"context"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/idempotency"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/runtime/failure"
)

// ChangeOnCommand applies an operator's subscription change: seats added
// and upgrades are charged prorated now (the command's id is the charge's
// idempotency key), a downgrade waits for the term end, a pack is charged
// for the rest of the term, auto-renew is switched. The change is checked
// on a copy before anything is charged.
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
	apply := change(in.Type(), cmd, in.ID(), at)
	return f.Processor.Once(ctx, in, consumer.AfterEffect(
		func(ctx context.Context) error {
			trial := *sub
			if _, err := apply(&trial); err != nil {
				return err
			}
			cents, what := price(in.Type(), cmd, sub, at)
			if cents <= 0 {
				return nil
			}
			_, err := f.d.Billing.Charge(ctx, f.bill(sub, idempotency.Change(in.ID()), cents, what))
			return knownOutcome(err)
		},
		f.mutate(in, sub.ID, func(s *subscription.Subscription, _ time.Time) (subscription.Change, error) {
			return apply(s)
		})))
}

// change is the state change a command asks for.
func change(typ string, cmd catalog.Command, id string, at time.Time) func(*subscription.Subscription) (subscription.Change, error) {
	return func(s *subscription.Subscription) (subscription.Change, error) {
		switch typ {
		case catalog.CommandAddSeats:
			return s.AddSeats(cmd.Seats, at)
		case catalog.CommandChangePlan:
			return s.ChangePlan(cmd.PlanCode, at)
		case catalog.CommandAddPack:
			return s.AddPack(id, cmd.PackKind, cmd.PackAmount, at)
		case catalog.CommandSetAutoRenew:
			return s.SetAutoRenew(cmd.AutoRenew, at)
		}
		return subscription.Change{}, failure.Permanentf("unknown command %s", typ)
	}
}

// price is what a command costs now, and the invoice line describing it.
func price(typ string, cmd catalog.Command, s *subscription.Subscription, at time.Time) (int64, string) {
	until := s.TermEnd.Format(time.DateOnly)
	switch typ {
	case catalog.CommandAddSeats:
		return s.SeatsCents(cmd.Seats, at), fmt.Sprintf("%d %s seats to %s", cmd.Seats, s.Order.PlanCode, until)
	case catalog.CommandChangePlan:
		return s.UpgradeCents(cmd.PlanCode, at), fmt.Sprintf("upgrade to %s to %s", cmd.PlanCode, until)
	case catalog.CommandAddPack:
		return s.PackCents(cmd.PackKind, cmd.PackAmount, at), fmt.Sprintf("%s pack of %d to %s", cmd.PackKind, cmd.PackAmount, until)
	}
	return 0, ""
}
