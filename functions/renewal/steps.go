package renewal

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// maxCatchUp bounds the rounds of steps one review runs (a clock that jumped
// a whole year makes several steps due, one after another).
const maxCatchUp = 12

// failedStepRetry is how soon a review comes back to a step that failed
// permanently: the subscription must not leave the review queries while a
// charge or a dunning step is stuck, and the cause may be fixed meanwhile.
const failedStepRetry = 24 * time.Hour

// review is what one review of a subscription saw.
type review struct {
	at     time.Time // when the due steps were last looked for
	failed bool      // a step failed permanently and was dead-lettered
	more   bool      // steps were still due after maxCatchUp rounds
}

// RunStepsOnDue runs every step due for one subscription, each its own
// exactly-once unit keyed by subscription, action and term, then schedules
// the next review. A permanent failure of a step is dead-lettered as a
// renewal-due event (replaying it reviews the subscription again) and the
// step is tried again at the next review, within failedStepRetry; a
// transient one asks for the due event again.
func (f *Function) RunStepsOnDue(ctx context.Context, in event.Event) error {
	var due catalog.Due
	if err := cloudevent.DecodeData(in, &due); err != nil {
		return err
	}
	if due.ReviewAt.After(f.d.Clock.Now()) {
		// Early (another tick's clock ran ahead): acknowledge without
		// recording, so the same event is processed when it is due.
		return nil
	}
	// The next review is the first step after the time the steps were last
	// looked at, not after the commit's time: a step falling due in between
	// would otherwise be skipped until the review after it.
	return f.once(ctx, in, due.SubscriptionID, consumer.WithEffect(
		func(ctx context.Context) (review, error) { return f.runDueSteps(ctx, due.SubscriptionID) },
		f.reschedule(due.SubscriptionID),
	))
}

// reschedule sets the subscription's next review: only that field, and no
// history record (a review that found nothing to do is not a change).
func (f *Function) reschedule(id string) func(context.Context, store.Tx, review) ([]consumer.Outgoing, error) {
	return func(ctx context.Context, tx store.Tx, r review) ([]consumer.Outgoing, error) {
		sub, err := f.d.Store.Subscription(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		sub.Reschedule(r.at, f.d.Policy)
		if r.more {
			// Reschedule looks after r.at only: the steps still due would
			// be left with no review at all. The next tick goes on.
			sub.ReviewAt(r.at)
		}
		if retry := r.at.Add(failedStepRetry); r.failed && (sub.NextReviewAt == nil || sub.NextReviewAt.After(retry)) {
			sub.ReviewAt(retry)
		}
		return nil, f.d.Store.SaveNextReview(tx, sub)
	}
}

// runDueSteps runs the steps due, each at most once per review even when it
// fails permanently, and says when it last looked for them.
func (f *Function) runDueSteps(ctx context.Context, id string) (r review, err error) {
	deadLettered := map[string]bool{}
	for range maxCatchUp {
		sub, err := f.d.Store.Subscription(ctx, nil, id)
		if err != nil {
			return r, err
		}
		r.at = f.d.Clock.Now()
		steps := slices.DeleteFunc(sub.Due(r.at, f.d.Policy), func(st subscription.Step) bool { return deadLettered[st.Key] })
		if len(steps) == 0 {
			return r, nil
		}
		for _, st := range steps {
			unit := unitEvent(sub.ID, st)
			err := f.runStep(ctx, unit, sub, st)
			for retry := 0; err != nil && !failure.IsPermanent(err) && retry < 2; retry++ {
				// Once again: after a commit whose publish failed it finds the
				// step done and publishes its recorded events. A redelivered
				// due event would no longer see the step due, so do it here.
				err = f.runStep(ctx, unit, sub, st)
			}
			if failure.IsPermanent(err) {
				deadLettered[st.Key], r.failed = true, true
				err = f.deadLetterStep(ctx, sub, st, r.at, err)
			}
			if err != nil {
				return r, fmt.Errorf("%s %s: %w", sub.ID, st.Key, err)
			}
		}
	}
	r.more = true
	return r, nil
}

// runStep runs one step exactly once: a charging step is quoted first, in a
// transaction of its own, and charges what was stored.
func (f *Function) runStep(ctx context.Context, unit event.Event, sub *subscription.Subscription, st subscription.Step) error {
	sub, err := f.quoteStep(ctx, unit, sub, st)
	if err != nil {
		return err
	}
	return f.once(ctx, unit, sub.ID, f.stepWork(unit, sub, st))
}

// chargeKey is the ledger key of a charging step's charge ("" for a step
// that charges nothing).
func chargeKey(sub *subscription.Subscription, st subscription.Step) string {
	switch st.Action {
	case subscription.ActCharge:
		return idempotency.Renewal(sub.ID, sub.TermEnd)
	case subscription.ActTrueUp:
		return idempotency.TrueUp(sub.ID, sub.TermStart, st.N)
	}
	return ""
}

// quoteStep stores the charge of a renewal or true-up step in the ledger
// before it is made, and returns the subscription with it. The renewal is
// priced from the subscription as it is now (RenewalOrder). The true-up
// bills the seats still owed now (TrueUpSeats, priced at the step's date):
// when the customer bought them since the notice there is nothing to bill,
// and the quarter is closed here with no charge.
func (f *Function) quoteStep(ctx context.Context, unit event.Event, sub *subscription.Subscription, st subscription.Step) (*subscription.Subscription, error) {
	key := chargeKey(sub, st)
	if key == "" || sub.Ledger.Find(key) != nil {
		return sub, nil
	}
	quoted, _, err := f.d.Store.UpdateSubscription(ctx, sub.ID, quoteCause(unit), func(s *subscription.Subscription) (subscription.Change, error) {
		now := f.d.Clock.Now()
		if !s.StillDue(st, now, f.d.Policy) || s.Ledger.Find(key) != nil {
			return noOp(s, "nothing to quote"), nil
		}
		var ln *ledger.Line
		var err error
		if st.Action == subscription.ActCharge {
			ln, err = s.QuoteRenewal(key, now)
		} else {
			seats := s.ReviseTrueUp()
			if seats == 0 {
				return s.ApplyTrueUp("", now), nil
			}
			ln, err = s.QuoteTrueUp(key, s.TrueUpCents(st.At),
				fmt.Sprintf("quarter %d true-up: %d seats to %s", st.N, seats, s.TermEnd.Format(time.DateOnly)), now)
		}
		if err != nil {
			return subscription.Change{}, err
		}
		return quotedChange(s, ln), nil
	})
	return quoted, err
}

// deadLetterStep records a step's permanent failure as a renewal-due event
// for its subscription, so that replaying it (fulfillctl replay) reviews the
// subscription again. Its id names the step and the review, so each failure
// is a dead letter of its own and a replayed one is not taken for a duplicate.
func (f *Function) deadLetterStep(ctx context.Context, sub *subscription.Subscription, st subscription.Step, at time.Time, cause error) error {
	id := fmt.Sprintf("redo/%s/%s/%s", sub.ID, st.Key, at.UTC().Format(time.RFC3339Nano))
	redo, err := cloudevent.New(ctx, id, catalog.SourceRenewal, catalog.RenewalDue, sub.ID,
		catalog.Due{SubscriptionID: sub.ID, ReviewAt: at, Version: sub.Version})
	if err != nil {
		return err
	}
	return f.Processor.DeadLetter(ctx, redo, cause)
}

// stepWork is what one step does: its outside call (the effect) and its state
// change, applied only if the step is still due when the transaction reads
// the subscription. Amounts are priced at the step's due date, so a retried
// call sends the same parameters with the same idempotency key.
func (f *Function) stepWork(unit event.Event, sub *subscription.Subscription, st subscription.Step) consumer.Work {
	ifStillDue := func(apply func(s *subscription.Subscription, now time.Time) subscription.Change) func(context.Context, store.Tx) ([]consumer.Outgoing, error) {
		return f.mutate(unit, sub.ID, func(s *subscription.Subscription, now time.Time) (subscription.Change, error) {
			if !s.StillDue(st, now, f.d.Policy) {
				return noOp(s, "step no longer due"), nil
			}
			return apply(s, now), nil
		})
	}
	step := func(apply func(s *subscription.Subscription, now time.Time) subscription.Change) consumer.Work {
		return consumer.Work{Apply: ifStillDue(apply)}
	}
	switch st.Action {
	case subscription.ActNotice:
		return step(func(s *subscription.Subscription, now time.Time) subscription.Change { return s.SendRenewalNotice(now) })
	case subscription.ActCharge:
		return f.chargeWork(unit, sub, st)
	case subscription.ActSettle:
		return f.settleWork(unit, sub, st)
	case subscription.ActReconNotice:
		return step(func(s *subscription.Subscription, now time.Time) subscription.Change {
			return s.NoticeReconciliation(st.N, now)
		})
	case subscription.ActTrueUp:
		return f.trueUpWork(unit, sub, st)
	case subscription.ActVoidRenewal:
		return f.voidWork(unit, sub, st)
	case subscription.ActRetry:
		return f.retryWork(unit, sub, st)
	case subscription.ActSettleAddition:
		return f.settleAdditionWork(unit, sub, st)
	case subscription.ActGrace:
		return f.askFirst(unit, sub, st, func(s *subscription.Subscription, now time.Time) subscription.Change { return s.EnterGrace(now) })
	case subscription.ActSuspend:
		return f.askFirst(unit, sub, st, func(s *subscription.Subscription, now time.Time) subscription.Change { return s.Suspend(now) })
	case subscription.ActCancel:
		return f.askFirst(unit, sub, st, func(s *subscription.Subscription, now time.Time) subscription.Change { return s.CancelUnpaid(now) })
	case subscription.ActCheckRenewal:
		return f.askFirst(unit, sub, st, func(s *subscription.Subscription, now time.Time) subscription.Change {
			failedAt := now
			if ln := s.RenewalLine(); ln != nil {
				failedAt = ln.QuotedAt
			}
			return s.RenewalUnpaid(s.RenewalInvoiceID, failedAt, now, "still unpaid at term end")
		})
	default: // subscription.ActExpire
		return step(func(s *subscription.Subscription, now time.Time) subscription.Change { return s.ExpireIfEnded(now) })
	}
}

// chargeWork raises the renewal invoice for the next term: exactly the
// quoted renewal line (quoteStep), in its currency. What its payment renews
// with is what the line bought (MarkRenewalPending). If the pay call gets no
// answer the charge is marked unknown, to be settled by asking Stripe
// (settleWork), never by charging again.
func (f *Function) chargeWork(unit event.Event, sub *subscription.Subscription, st subscription.Step) consumer.Work {
	key := chargeKey(sub, st)
	ln := sub.Ledger.Find(key)
	if ln == nil { // not quoted: the step is no longer due
		return consumer.Work{Apply: f.mutate(unit, sub.ID, func(s *subscription.Subscription, _ time.Time) (subscription.Change, error) {
			return noOp(s, "renewal not quoted: no longer due"), nil
		})}
	}
	line := *ln
	return consumer.WithEffect(
		func(ctx context.Context) (raised, error) { return f.charge(ctx, sub, line) },
		func(ctx context.Context, tx store.Tx, r raised) ([]consumer.Outgoing, error) {
			return f.mutateTx(unit, sub.ID, func(tx store.Tx, s *subscription.Subscription, now time.Time) (subscription.Change, error) {
				if !s.StillDue(st, now, f.d.Policy) {
					return noOp(s, "renewal already raised"), nil
				}
				if _, err := f.sent(tx, s, key, r, now); err != nil {
					return subscription.Change{}, err
				}
				if r.unknown {
					s.RenewalInvoiceID = r.invoiceID
					return s.MarkChargeUnknown(now), nil
				}
				s.MarkRenewalPending(r.invoiceID, now)
				return subscription.Change{From: s.Status, To: s.Status, Reason: "renewal invoice " + r.invoiceID + " raised"}, nil
			})(ctx, tx)
		})
}

// trueUpWork invoices the quarter's true-up: exactly the quoted line
// (quoteStep). The seats are added when the invoice is raised: they were
// used already.
func (f *Function) trueUpWork(unit event.Event, sub *subscription.Subscription, st subscription.Step) consumer.Work {
	key := chargeKey(sub, st)
	var line ledger.Line
	if ln := sub.Ledger.Find(key); ln != nil {
		line = *ln
	}
	return consumer.WithEffect(
		func(ctx context.Context) (raised, error) {
			if line.Key == "" || line.AmountCents == 0 {
				return raised{}, nil
			}
			return f.charge(ctx, sub, line)
		},
		func(ctx context.Context, tx store.Tx, r raised) ([]consumer.Outgoing, error) {
			return f.mutateTx(unit, sub.ID, func(tx store.Tx, s *subscription.Subscription, now time.Time) (subscription.Change, error) {
				if !s.StillDue(st, now, f.d.Policy) {
					return noOp(s, "step no longer due"), nil
				}
				if line.Key == "" {
					return noOp(s, "true-up not quoted"), nil
				}
				if line.AmountCents > 0 {
					if _, err := f.sent(tx, s, key, r, now); err != nil {
						return subscription.Change{}, err
					}
				}
				return s.ApplyTrueUp(r.invoiceID, now), nil
			})(ctx, tx)
		})
}

// voidWork voids the unpaid renewal invoice of a subscription whose
// auto-renew was turned off, after asking Stripe where it is: a paid one is
// left to its webhook (a charge that went through is never dropped), a void
// or uncollectible one is not voided again. Dunning stops; the subscription
// then runs to its term end.
func (f *Function) voidWork(unit event.Event, sub *subscription.Subscription, st subscription.Step) consumer.Work {
	invoiceID := sub.OpenRenewalInvoice()
	return consumer.WithEffect(
		func(ctx context.Context) (stripe.InvoiceState, error) {
			inv, err := f.d.Billing.InvoiceState(ctx, invoiceID)
			switch {
			case err != nil:
				return inv, err
			case inv.Status.Final():
				return inv, nil
			}
			return stripe.InvoiceState{Status: stripe.InvoiceVoid}, f.d.Billing.VoidInvoice(ctx, invoiceID, idempotency.Renewal(sub.ID, sub.TermEnd)+"-void")
		},
		func(ctx context.Context, tx store.Tx, inv stripe.InvoiceState) ([]consumer.Outgoing, error) {
			return f.mutateTx(unit, sub.ID, func(tx store.Tx, s *subscription.Subscription, now time.Time) (subscription.Change, error) {
				switch {
				case !s.StillDue(st, now, f.d.Policy) || s.OpenRenewalInvoice() != invoiceID:
					return noOp(s, "renewal no longer open"), nil
				case inv.Status == stripe.InvoicePaid:
					// Paid before auto-renew was turned off: a charge that
					// went through is never dropped, the term is renewed.
					c := s.RenewalPaidAtProvider(invoiceID, now)
					return c, f.indexAsked(tx, s, invoiceID, inv)
				}
				return s.VoidRenewal(now), nil
			})(ctx, tx)
		})
}

// indexAsked indexes a payment Stripe was asked about (its webhook lost), as
// payment-result indexes one it is told of, so its refunds and disputes
// find the subscription.
func (f *Function) indexAsked(tx store.Tx, s *subscription.Subscription, invoiceID string, inv stripe.InvoiceState) error {
	ln := s.Ledger.ByInvoice(invoiceID)
	if inv.Status != stripe.InvoicePaid || ln == nil {
		return nil
	}
	return f.d.Store.IndexPayment(tx, s.ID, *ln, inv.PaymentIntentID)
}

// askFirst asks Stripe where the renewal invoice is before a step that
// takes features away (grace, suspension, cancellation: rule 9) or that
// finds the renewal still pending at term end. Paid (its invoice.paid never
// came): the term is renewed as invoice.paid would, and the step is not
// taken. Void or uncollectible: recorded, and the step goes on as for a
// failure. Open (or draft): the schedule goes on.
func (f *Function) askFirst(unit event.Event, sub *subscription.Subscription, st subscription.Step,
	then func(s *subscription.Subscription, now time.Time) subscription.Change) consumer.Work {
	invoiceID := sub.OpenRenewalInvoice()
	return consumer.WithEffect(
		func(ctx context.Context) (stripe.InvoiceState, error) {
			if invoiceID == "" {
				return stripe.InvoiceState{Status: stripe.InvoiceOpen}, nil
			}
			return f.d.Billing.InvoiceState(ctx, invoiceID)
		},
		func(ctx context.Context, tx store.Tx, inv stripe.InvoiceState) ([]consumer.Outgoing, error) {
			return f.mutateTx(unit, sub.ID, func(tx store.Tx, s *subscription.Subscription, now time.Time) (subscription.Change, error) {
				if !s.StillDue(st, now, f.d.Policy) || s.OpenRenewalInvoice() != invoiceID {
					return noOp(s, "step no longer due"), nil
				}
				if c, renewed := applyRenewalAnswer(s, invoiceID, inv.Status, now); renewed {
					return c, f.indexAsked(tx, s, invoiceID, inv)
				}
				return then(s, now), nil
			})(ctx, tx)
		})
}

// retryWork pays the renewal invoice in dunning again, after asking Stripe
// where it is: a payment that went through meanwhile (its invoice.paid
// lost) renews the term and is not paid twice; a void or uncollectible
// invoice is recorded and not paid again; an open one is retried.
func (f *Function) retryWork(unit event.Event, sub *subscription.Subscription, st subscription.Step) consumer.Work {
	invoiceID := sub.Dunning.InvoiceID
	return consumer.WithEffect(
		func(ctx context.Context) (stripe.InvoiceState, error) {
			inv := stripe.InvoiceState{Status: stripe.InvoiceOpen}
			if invoiceID != "" {
				var err error
				if inv, err = f.d.Billing.InvoiceState(ctx, invoiceID); err != nil {
					return inv, err
				}
			}
			if inv.Status.Final() {
				return inv, nil
			}
			key := idempotency.RenewalRetry(sub.ID, sub.TermEnd, st.N)
			return inv, knownOutcome(f.d.Billing.RetryPayment(ctx, invoiceID, key))
		},
		func(ctx context.Context, tx store.Tx, inv stripe.InvoiceState) ([]consumer.Outgoing, error) {
			return f.mutateTx(unit, sub.ID, func(tx store.Tx, s *subscription.Subscription, now time.Time) (subscription.Change, error) {
				if !s.StillDue(st, now, f.d.Policy) || s.Dunning.InvoiceID != invoiceID {
					return noOp(s, "step no longer due"), nil
				}
				if c, renewed := applyRenewalAnswer(s, invoiceID, inv.Status, now); renewed {
					return c, f.indexAsked(tx, s, invoiceID, inv)
				}
				return s.RecordRetry(st.N, now), nil
			})(ctx, tx)
		})
}

// settleAdditionWork asks Stripe what became of a mid-term charge whose
// answer never came: paid is granted as invoice.paid would grant it, void
// or uncollectible is recorded, and an invoice still open a day after its
// one payment attempt is recorded failed (a later invoice.paid still
// grants it).
func (f *Function) settleAdditionWork(unit event.Event, sub *subscription.Subscription, st subscription.Step) consumer.Work {
	var line ledger.Line
	if st.N >= 0 && st.N < len(sub.Ledger) {
		line = sub.Ledger[st.N]
	}
	return consumer.WithEffect(
		func(ctx context.Context) (stripe.InvoiceState, error) {
			if line.InvoiceID == "" {
				return stripe.InvoiceState{}, nil
			}
			return f.d.Billing.InvoiceState(ctx, line.InvoiceID)
		},
		func(ctx context.Context, tx store.Tx, inv stripe.InvoiceState) ([]consumer.Outgoing, error) {
			return f.mutateTx(unit, sub.ID, func(tx store.Tx, s *subscription.Subscription, now time.Time) (subscription.Change, error) {
				if !s.StillDue(st, now, f.d.Policy) || line.InvoiceID == "" {
					return noOp(s, "charge already answered"), nil
				}
				o := outcomeOf(inv.Status)
				if ln := s.Ledger.Find(line.Key); ln != nil {
					ln.AskedAt = now // one answer per question: a still-failed line is not asked again
				}
				c := s.ApplyChargeOutcome(line.Key, line.InvoiceID, o, 0, now)
				if c.NoOp {
					c = subscription.Change{From: s.Status, To: s.Status, Reason: "asked Stripe about charge " + line.Key + ": " + string(inv.Status)}
				}
				return c, f.indexAsked(tx, s, line.InvoiceID, inv)
			})(ctx, tx)
		})
}

// raised is what the renewal charge's call returned: the invoice, whether
// its payment's outcome is unknown, and the customer created for it (if
// the subscription had none).
type raised struct {
	invoiceID  string
	unknown    bool
	customerID string
}

// settleWork asks Stripe what became of a renewal charge whose answer never
// came: a paid invoice is left to its webhook; an unpaid one is paid now
// under a key of its own (the first pay call did not take).
func (f *Function) settleWork(unit event.Event, sub *subscription.Subscription, st subscription.Step) consumer.Work {
	invoiceID := sub.RenewalInvoiceID
	return consumer.AfterEffect(
		func(ctx context.Context) error {
			inv, err := f.d.Billing.InvoiceState(ctx, invoiceID)
			if err != nil || inv.Status.Final() {
				return err
			}
			key := idempotency.RenewalSettle(sub.ID, sub.TermEnd)
			return knownOutcome(f.d.Billing.RetryPayment(ctx, invoiceID, key))
		},
		f.mutate(unit, sub.ID, func(s *subscription.Subscription, now time.Time) (subscription.Change, error) {
			if !s.StillDue(st, now, f.d.Policy) {
				return noOp(s, "charge already settled"), nil
			}
			s.MarkRenewalPending(invoiceID, now)
			s.ChargeSent(idempotency.Renewal(s.ID, s.TermEnd), invoiceID, false, now)
			return subscription.Change{From: s.Status, To: s.Status, Reason: "renewal charge settled with Stripe: invoice " + invoiceID}, nil
		}))
}

// knownOutcome turns an unknown payment outcome into a transient error: the
// redelivery calls again with the same idempotency key, which Stripe answers
// from the first call, so it never charges twice.
func knownOutcome(err error) error {
	if _, ok := stripe.IsOutcomeUnknown(err); ok {
		return errors.Unwrap(err)
	}
	return err
}

// lineBill is the charge of the stored ledger line ln: its amount, currency,
// description and key, as quoted (a renewal's invoice names its term).
func lineBill(sub *subscription.Subscription, ln ledger.Line) stripe.Bill {
	b := stripe.Bill{
		SubscriptionID: sub.ID, CustomerID: sub.Customer.ProviderCustomerID, AmountCents: ln.AmountCents,
		Currency: ln.Currency, Description: ln.Description, Key: ln.Key, PaymentFrom: sub.SavedPaymentFrom,
	}
	if b.Currency == "" {
		b.Currency = sub.ChargeCurrency()
	}
	if ln.Kind == ledger.Renewal {
		b.TermStart = ln.Buys.TermStart
	}
	return b
}

func noOp(s *subscription.Subscription, reason string) subscription.Change {
	return subscription.Change{From: s.Status, To: s.Status, NoOp: true, Reason: reason}
}

// mutate re-reads the subscription in the transaction, applies change, saves
// it with its history, and announces any subscription event.
func (f *Function) mutate(unit event.Event, id string, change func(*subscription.Subscription, time.Time) (subscription.Change, error)) func(context.Context, store.Tx) ([]consumer.Outgoing, error) {
	return f.mutateTx(unit, id, func(_ store.Tx, s *subscription.Subscription, now time.Time) (subscription.Change, error) {
		return change(s, now)
	})
}

// mutateTx is mutate for a change that also writes in the transaction.
func (f *Function) mutateTx(unit event.Event, id string, change func(store.Tx, *subscription.Subscription, time.Time) (subscription.Change, error)) func(context.Context, store.Tx) ([]consumer.Outgoing, error) {
	return func(ctx context.Context, tx store.Tx) ([]consumer.Outgoing, error) {
		sub, err := f.d.Store.Subscription(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		c, err := change(tx, sub, f.d.Clock.Now())
		if err != nil {
			return nil, err
		}
		if err := f.d.Store.SaveSubscription(tx, sub, c, unit.Type(), unit.ID(), cloudevent.Key(unit)); err != nil {
			return nil, err
		}
		if c.NoOp || c.Event == "" {
			return nil, nil
		}
		e, err := cloudevent.New(ctx, cloudevent.DerivedID(unit, c.Event), catalog.SourceRenewal, c.Event, sub.ID, sub.AnnouncementUnder(c, f.d.Policy))
		if err != nil {
			return nil, err
		}
		return []consumer.Outgoing{{Topic: catalog.TopicSubscriptionEvents, Event: e}}, nil
	}
}

// once runs w for in exactly once. Its transaction reads the subscription
// id, which is read with the dedupe record, in one request.
func (f *Function) once(ctx context.Context, in event.Event, id string, w consumer.Work) error {
	w.Reads = append(w.Reads, store.Key{Collection: store.Subscriptions, ID: id})
	return f.Processor.Once(ctx, in, w)
}

// unitEvent names one step of one subscription.
func unitEvent(subscriptionID string, st subscription.Step) event.Event {
	e := event.New()
	e.SetID(subscriptionID + "/" + st.Key)
	e.SetSource(catalog.SourceRenewal)
	e.SetType("fulfillment.renewal." + string(st.Action) + ".v1")
	e.SetSubject(subscriptionID)
	return e
}

// applyRenewalAnswer applies what Stripe says of the renewal invoice: paid
// renews the term (renewed is true, with its change); void or uncollectible
// is recorded in the ledger; open changes nothing.
func applyRenewalAnswer(s *subscription.Subscription, invoiceID string, status stripe.InvoiceStatus, now time.Time) (c subscription.Change, renewed bool) {
	switch status {
	case stripe.InvoicePaid:
		return s.RenewalPaidAtProvider(invoiceID, now), true
	case stripe.InvoiceVoid, stripe.InvoiceUncollectible:
		s.ApplyChargeOutcome("", invoiceID, outcomeOf(status), 0, now)
	}
	return subscription.Change{}, false
}

// outcomeOf is the ledger outcome of an invoice in status (open and draft:
// not paid, recorded as failed).
func outcomeOf(status stripe.InvoiceStatus) ledger.Outcome {
	switch status {
	case stripe.InvoicePaid:
		return ledger.Paid
	case stripe.InvoiceVoid:
		return ledger.Void
	case stripe.InvoiceUncollectible:
		return ledger.Uncollectible
	}
	return ledger.Failed
}
