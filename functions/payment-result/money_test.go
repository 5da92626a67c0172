package paymentresult

import (
	"context"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/idempotency"
	"fulfillment/shared/domain/ledger"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/testsupport/storetest"
)

// bought is an active premium subscription of 5 seats, paid at checkout
// (payment intent pi_buy), with a quote for 5 more seats sent on in_seats:
// what renewal stores before it charges added seats.
func bought(t *testing.T, fx fixture) (subID, key string) {
	t.Helper()
	buy := checkout(t, "evt_buy", "cs_m", "premium", "paid", t0)
	var pe catalog.ProviderEvent
	if err := buy.DataAs(&pe); err != nil {
		t.Fatal(err)
	}
	pe.PaymentIntentID, pe.Currency, pe.AmountCents = "pi_buy", "eur", 34800
	fx.handle(t, providerEvent(t, "evt_buy", catalog.CheckoutCompleted, pe))
	subID, key = "sub-cs_m", idempotency.Change("cmd-seats")
	_, _, err := fx.st.UpdateSubscription(context.Background(), subID, store.Cause{Type: "test", ID: "quote", Key: "quote"},
		func(s *subscription.Subscription) (subscription.Change, error) {
			if _, err := s.Quote(key, subscription.Addition{Kind: ledger.Seats, Seats: 5}, t0.Add(24*time.Hour)); err != nil {
				return subscription.Change{}, err
			}
			return s.ChargeSent(key, "in_seats", false, t0.Add(24*time.Hour)), nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return subID, key
}

// changeInvoice is the webhook of a mid-term charge's invoice: metadata
// subscription_id and charge, no term_start.
func changeInvoice(t *testing.T, id, typ, subID, key string, at time.Time) event.Event {
	return providerEvent(t, id, typ, catalog.ProviderEvent{
		OccurredAt: at, SubscriptionID: subID, InvoiceID: "in_seats", ChargeKey: key, AmountCents: 1234, PaymentIntentID: "pi_seats",
	})
}

func TestADeclinedChangeGrantsNothingAndIsNotDeadLettered(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	subID, key := bought(t, fx)
	fx.handle(t, changeInvoice(t, "evt_fail", catalog.InvoicePaymentFailed, subID, key, t0.Add(25*time.Hour)))
	s := fx.sub(t, subID)
	if s.Order.Seats != 5 || s.Status != subscription.Active {
		t.Fatalf("after a declined charge for 5 seats: %d seats, %s; want 5, active", s.Order.Seats, s.Status)
	}
	if ln := s.Ledger.Find(key); ln == nil || ln.Outcome != ledger.Failed || ln.Granted {
		t.Fatalf("ledger line %+v, want failed and not granted", ln)
	}
	if _, found := storetest.Lookup[map[string]any](t, fx.st, store.DeadLetters, Name+"_"+cloudevent.Key(changeInvoice(t, "evt_fail", catalog.InvoicePaymentFailed, subID, key, t0))); found {
		t.Fatal("a change invoice's failure was dead-lettered")
	}
	// The customer pays the invoice later: the seats are granted then.
	fx.handle(t, changeInvoice(t, "evt_paid", catalog.InvoicePaid, subID, key, t0.Add(48*time.Hour)))
	s = fx.sub(t, subID)
	if s.Order.Seats != 10 {
		t.Fatalf("after the invoice was paid: %d seats, want 10", s.Order.Seats)
	}
	if ln := s.Ledger.Find(key); ln.Outcome != ledger.Paid || !ln.Granted {
		t.Fatalf("ledger line %+v, want paid and granted", ln)
	}
	_, types := published(fx.rec, catalog.TopicSubscriptionEvents)
	if types[len(types)-1] != catalog.SubscriptionChanged {
		t.Fatalf("published %v, want the change announced when paid", types)
	}
	// A late failure of the paid invoice changes nothing.
	fx.handle(t, changeInvoice(t, "evt_fail2", catalog.InvoicePaymentFailed, subID, key, t0.Add(30*time.Hour)))
	if s := fx.sub(t, subID); s.Order.Seats != 10 || s.Ledger.Find(key).Outcome != ledger.Paid {
		t.Fatalf("a late failure took back paid seats: %d seats, %s", s.Order.Seats, s.Ledger.Find(key).Outcome)
	}
}

func TestARefundInWholeTakesBackWhatTheChargeBought(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	subID, key := bought(t, fx)
	fx.handle(t, changeInvoice(t, "evt_paid", catalog.InvoicePaid, subID, key, t0.Add(25*time.Hour)))
	partial := providerEvent(t, "evt_part", catalog.ChargeRefunded, catalog.ProviderEvent{
		OccurredAt: t0.Add(26 * time.Hour), PaymentIntentID: "pi_seats", ChargeID: "ch_seats", RefundedCents: 100,
	})
	fx.handle(t, partial)
	if s := fx.sub(t, subID); s.Order.Seats != 10 || s.Ledger.Find(key).Outcome != ledger.PartiallyRefunded {
		t.Fatalf("after a partial refund: %d seats, %s; want 10, partially refunded", s.Order.Seats, s.Ledger.Find(key).Outcome)
	}
	whole := providerEvent(t, "evt_whole", catalog.ChargeRefunded, catalog.ProviderEvent{
		OccurredAt: t0.Add(27 * time.Hour), PaymentIntentID: "pi_seats", ChargeID: "ch_seats", RefundedCents: 1234, Refunded: true,
	})
	fx.handle(t, whole)
	s := fx.sub(t, subID)
	if ln := s.Ledger.Find(key); s.Order.Seats != 5 || ln.Outcome != ledger.Refunded || !ln.Revoked {
		t.Fatalf("after a full refund: %d seats, line %+v; want the 5 seats taken back", s.Order.Seats, ln)
	}
	if len(s.Ledger.Uncovered()) != 0 {
		t.Fatalf("grants not covered by payment: %+v", s.Ledger.Uncovered())
	}
}

func TestALostDisputeOnThePurchaseEndsTheSubscription(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	subID, _ := bought(t, fx)
	opened := providerEvent(t, "evt_dispute", catalog.ChargeDisputeCreated, catalog.ProviderEvent{
		OccurredAt: t0.Add(40 * time.Hour), PaymentIntentID: "pi_buy", ChargeID: "ch_buy", AmountCents: 34800,
	})
	fx.handle(t, opened)
	s := fx.sub(t, subID)
	if s.Status != subscription.Active || s.Ledger.Find("purchase-cs_m").Outcome != ledger.Disputed {
		t.Fatalf("after a dispute opened: %s, purchase %s; want active, disputed", s.Status, s.Ledger.Find("purchase-cs_m").Outcome)
	}
	if _, types := published(fx.rec, catalog.TopicSubscriptionEvents); types[len(types)-1] != catalog.PaymentDisputed {
		t.Fatalf("published %v, want the dispute announced for the team", types)
	}
	lost := providerEvent(t, "evt_lost", catalog.ChargeDisputeClosed, catalog.ProviderEvent{
		OccurredAt: t0.Add(80 * time.Hour), PaymentIntentID: "pi_buy", ChargeID: "ch_buy", DisputeStatus: "lost",
	})
	fx.handle(t, lost)
	s = fx.sub(t, subID)
	if s.Status != subscription.Canceled {
		t.Fatalf("after a lost dispute on the purchase: %s, want canceled (paid features taken back)", s.Status)
	}
	if _, types := published(fx.rec, catalog.TopicSubscriptionEvents); types[len(types)-1] != catalog.SubscriptionCanceled {
		t.Fatalf("published %v, want the cancellation announced (provisioning revokes)", types)
	}
}

func TestARefundForAChargeNotOursIsDeadLettered(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	bought(t, fx)
	stranger := providerEvent(t, "evt_stranger", catalog.ChargeRefunded, catalog.ProviderEvent{
		OccurredAt: t0, PaymentIntentID: "pi_unknown", ChargeID: "ch_x", Refunded: true,
	})
	// Retried while its payment may be on its way; on the last attempt, kept for a person.
	if err := fx.f.Handle(context.Background(), stranger); err == nil {
		t.Fatal("a refund of an unknown payment was acknowledged at once; want it retried")
	}
	last := cloudevent.WithDelivery(context.Background(), cloudevent.Delivery{Attempt: consumer.DefaultMaxDeliveryAttempts})
	if err := fx.f.Handle(last, stranger); err != nil {
		t.Fatalf("last attempt: %v, want it parked and acknowledged", err)
	}
	if dl, found := storetest.Lookup[consumer.DeadLetter](t, fx.st, store.DeadLetters, Name+"_"+cloudevent.Key(stranger)); !found || dl.Awaiting != "payment_refs/pi_unknown" {
		t.Fatalf("a refund of a charge we cannot place: record %+v found=%v, want it kept for a person, awaiting its payment", dl, found)
	}
}

// A refund that arrives before the purchase it refunds is parked on its
// payment intent; the purchase, once it indexes that payment, sends the
// refund again, and delivered it takes back what the purchase bought.
func TestARefundParkedBeforeItsPurchaseIsAppliedOnceThePurchaseArrives(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	early := providerEvent(t, "evt_refund_early", catalog.ChargeRefunded, catalog.ProviderEvent{
		OccurredAt: t0.Add(time.Hour), PaymentIntentID: "pi_buy", ChargeID: "ch_buy",
		AmountCents: 34800, RefundedCents: 34800, Refunded: true,
	})
	fx.park(t, early)
	dl, found := storetest.Lookup[consumer.DeadLetter](t, fx.st, store.DeadLetters, Name+"_"+cloudevent.Key(early))
	if !found || dl.Awaiting != "payment_refs/pi_buy" {
		t.Fatalf("parked record %+v found=%v, want it awaiting payment_refs/pi_buy", dl, found)
	}
	subID, _ := bought(t, fx)
	again := fx.rec.On(catalog.TopicProviderEvents)
	if len(again) != 1 || again[0].ID() != early.ID() {
		t.Fatalf("sent again: %v, want the parked refund", again)
	}
	fx.handle(t, again[0])
	s := fx.sub(t, subID)
	if ln := s.Ledger.Find("purchase-cs_m"); ln == nil || ln.Outcome != ledger.Refunded || s.Status != subscription.Canceled {
		t.Fatalf("after the parked refund: %s, purchase line %+v; want canceled, refunded", s.Status, ln)
	}
}

func TestAVoidedRenewalInvoiceEntersDunning(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	subID, _ := bought(t, fx)
	end := renewalRaised(t, fx, subID, nil)
	voided := providerEvent(t, "evt_void", catalog.InvoiceVoided, catalog.ProviderEvent{
		OccurredAt: end.Add(-6 * 24 * time.Hour), SubscriptionID: subID, InvoiceID: "in_renew",
	})
	fx.handle(t, voided)
	s := fx.sub(t, subID)
	if s.Status != subscription.PastDue || s.Ledger.ByInvoice("in_renew").Outcome != ledger.Void {
		t.Fatalf("after the renewal invoice was voided: %s, line %s; want past due (dunning converges), void", s.Status, s.Ledger.ByInvoice("in_renew").Outcome)
	}
	// The schedule counts from the renewal's charge (its failure never
	// came), not from the void a day later.
	if want := end.Add(-7 * 24 * time.Hour); !s.Dunning.FailedAt.Equal(want) {
		t.Fatalf("dunning from %s, want the charge's %s", s.Dunning.FailedAt, want)
	}
}

func TestCheckoutCurrencyIsKept(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	subID, key := bought(t, fx)
	s := fx.sub(t, subID)
	if s.ChargeCurrency() != "eur" || s.Ledger.Find(key).Currency != "eur" || s.Ledger.Find("purchase-cs_m").Currency != "eur" {
		t.Fatalf("currency %q, lines %q / %q; want eur throughout", s.ChargeCurrency(), s.Ledger.Find(key).Currency, s.Ledger.Find("purchase-cs_m").Currency)
	}
}

// A renewal payment that failed at the provider is applied although one of
// our own changes (here the auto-renew command, a review's notice) was
// recorded after the failure happened and before its webhook arrived: only
// provider events make a provider event stale.
func TestARenewalFailureArrivingAfterOurOwnChangeStartsDunning(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	subID, _ := bought(t, fx)
	end := renewalRaised(t, fx, subID, func(s *subscription.Subscription, charged time.Time) (subscription.Change, error) {
		// Our change an hour after the charge, before the failure's webhook.
		if _, err := s.SetAutoRenew(false, charged.Add(time.Hour)); err != nil {
			return subscription.Change{}, err
		}
		return s.SetAutoRenew(true, charged.Add(time.Hour))
	})
	failed := providerEvent(t, "evt_renew_failed", catalog.InvoicePaymentFailed, catalog.ProviderEvent{
		OccurredAt: end.Add(-7 * 24 * time.Hour).Add(time.Minute), SubscriptionID: subID, InvoiceID: "in_renew",
		ChargeKey: idempotency.Renewal(subID, end), TermStart: end, AmountCents: 34800,
	})
	fx.handle(t, failed)
	s := fx.sub(t, subID)
	if s.Status != subscription.PastDue || s.Dunning.InvoiceID != "in_renew" {
		t.Fatalf("after the renewal failure: %s, dunning %+v; want past due on in_renew", s.Status, s.Dunning)
	}
	if want := end.Add(-7 * 24 * time.Hour).Add(time.Minute); !s.ProviderEventAt.Equal(want) {
		t.Fatalf("newest provider time %s, want the failure's %s", s.ProviderEventAt, want)
	}
}

// A renewal whose pay call got no answer (never marked pending) and whose
// invoice.paid then arrives renews with what the renewal was charged for:
// the pending downgrade applies, the old plan is not kept.
func TestARenewalPaidAfterAnUnansweredPayCallAppliesThePendingDowngrade(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	buy := checkout(t, "evt_buy_u", "cs_u", "ultimate", "paid", t0)
	fx.handle(t, buy)
	subID := "sub-cs_u"
	var end time.Time
	_, _, err := fx.st.UpdateSubscription(context.Background(), subID, store.Cause{Type: "test", ID: "renewal", Key: "renewal"},
		func(s *subscription.Subscription) (subscription.Change, error) {
			end = s.TermEnd
			if _, err := s.ChangePlan("premium", t0.Add(time.Hour)); err != nil {
				return subscription.Change{}, err
			}
			charged := end.Add(-7 * 24 * time.Hour)
			key := idempotency.Renewal(s.ID, end)
			if _, err := s.QuoteRenewal(key, charged); err != nil {
				return subscription.Change{}, err
			}
			s.ChargeSent(key, "in_unknown", true, charged)
			s.RenewalInvoiceID = "in_unknown"
			return s.MarkChargeUnknown(charged), nil
		})
	if err != nil {
		t.Fatal(err)
	}
	fx.handle(t, providerEvent(t, "evt_paid_u", catalog.InvoicePaid, catalog.ProviderEvent{
		OccurredAt: end.Add(-7 * 24 * time.Hour).Add(time.Minute), SubscriptionID: subID, InvoiceID: "in_unknown",
		ChargeKey: idempotency.Renewal(subID, end), TermStart: end, AmountCents: 34800,
	}))
	s := fx.sub(t, subID)
	if !s.TermStart.Equal(end) || s.Order.PlanCode != "premium" || s.PendingPlan != "" {
		t.Fatalf("after the renewal was paid: term from %s, plan %s, pending %q; want renewed on premium", s.TermStart, s.Order.PlanCode, s.PendingPlan)
	}
}

// A purchase refunded in whole after the subscription renewed takes back
// the first term only: the current term, paid by its renewal, is kept.
func TestAPurchaseRefundedAfterAPaidRenewalKeepsTheRenewedTerm(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	subID, _ := bought(t, fx)
	end := renewalRaised(t, fx, subID, nil)
	fx.handle(t, providerEvent(t, "evt_renew_paid", catalog.InvoicePaid, catalog.ProviderEvent{
		OccurredAt: end.Add(-7 * 24 * time.Hour), SubscriptionID: subID, InvoiceID: "in_renew",
		ChargeKey: idempotency.Renewal(subID, end), TermStart: end, AmountCents: 34800, PaymentIntentID: "pi_renew",
	}))
	fx.handle(t, providerEvent(t, "evt_refund_buy", catalog.ChargeRefunded, catalog.ProviderEvent{
		OccurredAt: end.Add(-6 * 24 * time.Hour), PaymentIntentID: "pi_buy", ChargeID: "ch_buy",
		AmountCents: 34800, RefundedCents: 34800, Refunded: true,
	}))
	s := fx.sub(t, subID)
	if s.Status != subscription.Active || !s.TermStart.Equal(end) {
		t.Fatalf("after the purchase was refunded: %s, term from %s; want active on the renewed term from %s", s.Status, s.TermStart, end)
	}
	if ln := s.Ledger.Find("purchase-cs_m"); ln == nil || ln.Outcome != ledger.Refunded {
		t.Fatalf("purchase line %+v, want refunded", ln)
	}
}

// Seats added in one term and refunded in whole after the renewal take
// nothing from the renewed term: its seats were paid by the renewal.
func TestAnAdditionRefundedAfterARenewalLeavesTheRenewedSeats(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	subID, key := bought(t, fx)
	fx.handle(t, changeInvoice(t, "evt_seats_paid", catalog.InvoicePaid, subID, key, t0.Add(25*time.Hour)))
	end := renewalRaised(t, fx, subID, nil)
	fx.handle(t, providerEvent(t, "evt_renew_paid", catalog.InvoicePaid, catalog.ProviderEvent{
		OccurredAt: end.Add(-7 * 24 * time.Hour), SubscriptionID: subID, InvoiceID: "in_renew",
		ChargeKey: idempotency.Renewal(subID, end), TermStart: end, AmountCents: 348000,
	}))
	if s := fx.sub(t, subID); s.Order.Seats != 10 || !s.TermStart.Equal(end) {
		t.Fatalf("after the renewal: %d seats, term from %s; want 10 from %s", s.Order.Seats, s.TermStart, end)
	}
	fx.handle(t, providerEvent(t, "evt_refund_seats", catalog.ChargeRefunded, catalog.ProviderEvent{
		OccurredAt: end.Add(24 * time.Hour), PaymentIntentID: "pi_seats", ChargeID: "ch_seats", AmountCents: 1234, RefundedCents: 1234, Refunded: true,
	}))
	s := fx.sub(t, subID)
	if s.Order.Seats != 10 || s.Status != subscription.Active {
		t.Fatalf("after refunding last term's seats: %d seats, %s; want the renewed 10, active", s.Order.Seats, s.Status)
	}
	if ln := s.Ledger.Find(key); ln.Outcome != ledger.Refunded {
		t.Fatalf("seats line %s, want refunded", ln.Outcome)
	}
}

// A pack bought after the renewal was quoted is for the rest of the term:
// the renewed term holds the storage its renewal was charged for.
func TestAPackBoughtAfterTheRenewalQuoteEndsWithItsTerm(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	subID, _ := bought(t, fx)
	end := renewalRaised(t, fx, subID, func(s *subscription.Subscription, quoted time.Time) (subscription.Change, error) {
		if _, err := s.Quote("change-cmd-pack", subscription.Addition{Kind: ledger.Pack, PackKind: subscription.PackStorage, PackAmount: 10}, quoted.Add(time.Hour)); err != nil {
			return subscription.Change{}, err
		}
		s.ChargeSent("change-cmd-pack", "in_pack", false, quoted.Add(time.Hour))
		return s.ApplyChargeOutcome("change-cmd-pack", "in_pack", ledger.Paid, 0, quoted.Add(time.Hour)), nil
	})
	if s := fx.sub(t, subID); s.Order.StorageGB != 10 {
		t.Fatalf("after the pack was paid: %d GB, want 10", s.Order.StorageGB)
	}
	fx.handle(t, providerEvent(t, "evt_renew_paid", catalog.InvoicePaid, catalog.ProviderEvent{
		OccurredAt: end.Add(-6 * 24 * time.Hour), SubscriptionID: subID, InvoiceID: "in_renew",
		ChargeKey: idempotency.Renewal(subID, end), TermStart: end, AmountCents: 348000,
	}))
	if s := fx.sub(t, subID); !s.TermStart.Equal(end) || s.Order.StorageGB != 0 {
		t.Fatalf("after the renewal: term from %s, %d GB; want renewed with the 0 GB it was charged for", s.TermStart, s.Order.StorageGB)
	}
}

// A true-up refunded in whole takes back the seats it raised: still used,
// they are owed again (billed by the next true-up or the renewal).
func TestATrueUpRefundedInWholeTakesBackItsSeats(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	subID, _ := bought(t, fx)
	tkey := "trueup-" + subID + "-q1"
	at := t0.Add(100 * 24 * time.Hour)
	_, _, err := fx.st.UpdateSubscription(context.Background(), subID, store.Cause{Type: "test", ID: "trueup", Key: "trueup"},
		func(s *subscription.Subscription) (subscription.Change, error) {
			s.RecordUsage(t0, 8, t0)
			s.NoticeReconciliation(1, at.Add(-7*24*time.Hour))
			if _, err := s.QuoteTrueUp(tkey, 5000, "quarter 1 true-up: 3 seats", at); err != nil {
				return subscription.Change{}, err
			}
			s.ChargeSent(tkey, "in_trueup", false, at)
			return s.ApplyTrueUp("in_trueup", at), nil
		})
	if err != nil {
		t.Fatal(err)
	}
	fx.handle(t, changeInvoiceOf(t, "evt_trueup_paid", catalog.InvoicePaid, subID, tkey, "in_trueup", "pi_trueup", at.Add(time.Minute)))
	if s := fx.sub(t, subID); s.Order.Seats != 8 {
		t.Fatalf("after the true-up: %d seats, want 8", s.Order.Seats)
	}
	fx.handle(t, providerEvent(t, "evt_refund_trueup", catalog.ChargeRefunded, catalog.ProviderEvent{
		OccurredAt: at.Add(24 * time.Hour), PaymentIntentID: "pi_trueup", ChargeID: "ch_trueup", AmountCents: 5000, RefundedCents: 5000, Refunded: true,
	}))
	s := fx.sub(t, subID)
	if s.Order.Seats != 5 || s.SeatsOwed != 3 {
		t.Fatalf("after the true-up was refunded: %d seats, %d owed; want 5 seats, 3 owed", s.Order.Seats, s.SeatsOwed)
	}
}

func changeInvoiceOf(t *testing.T, id, typ, subID, key, invoiceID, pi string, at time.Time) event.Event {
	return providerEvent(t, id, typ, catalog.ProviderEvent{
		OccurredAt: at, SubscriptionID: subID, InvoiceID: invoiceID, ChargeKey: key, AmountCents: 5000, PaymentIntentID: pi,
	})
}

// Seats paid while the renewal is in dunning are granted: they pay for the
// current term, which dunning keeps running.
func TestSeatsPaidDuringDunningAreGranted(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	subID, key := bought(t, fx)
	_, _, err := fx.st.UpdateSubscription(context.Background(), subID, store.Cause{Type: "test", ID: "dunning", Key: "dunning"},
		func(s *subscription.Subscription) (subscription.Change, error) {
			s.MarkRenewalPending("in_renew", t0.Add(48*time.Hour))
			return s.ApplyPaymentFailed(s.TermEnd, t0.Add(48*time.Hour), "in_renew"), nil
		})
	if err != nil {
		t.Fatal(err)
	}
	fx.handle(t, changeInvoice(t, "evt_seats_paid_dunning", catalog.InvoicePaid, subID, key, t0.Add(72*time.Hour)))
	s := fx.sub(t, subID)
	if ln := s.Ledger.Find(key); s.Status != subscription.PastDue || s.Order.Seats != 10 || !ln.Granted {
		t.Fatalf("after the seats were paid in dunning: %s, %d seats, line %+v; want past due, 10 seats, granted", s.Status, s.Order.Seats, ln)
	}
}

// renewalRaised raises the renewal of subID as renewal does a week before
// its term end (quoted, marked pending, sent on in_renew), then lets more
// (may be nil) change the subscription in the same transaction; it returns
// the term end.
func renewalRaised(t *testing.T, fx fixture, subID string, more func(s *subscription.Subscription, charged time.Time) (subscription.Change, error)) time.Time {
	t.Helper()
	var end time.Time
	_, _, err := fx.st.UpdateSubscription(context.Background(), subID, store.Cause{Type: "test", ID: "renewal", Key: "renewal"},
		func(s *subscription.Subscription) (subscription.Change, error) {
			end = s.TermEnd
			charged := end.Add(-7 * 24 * time.Hour)
			key := idempotency.Renewal(s.ID, end)
			if _, err := s.QuoteRenewal(key, charged); err != nil {
				return subscription.Change{}, err
			}
			s.MarkRenewalPending("in_renew", charged)
			c := s.ChargeSent(key, "in_renew", false, charged)
			if more == nil {
				return c, nil
			}
			return more(s, charged)
		})
	if err != nil {
		t.Fatal(err)
	}
	return end
}
