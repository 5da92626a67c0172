package faults

import (
	"fmt"
	"math/rand/v2"
	"time"

	"fulfillment/infra/demo"
	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/domain/subscription"
)

// kind is what happens to one order.
type kind string

const (
	bought        kind = "bought"          // checkout only
	renewed       kind = "renewed"         // checkout, then the next term's invoice paid
	pastDue       kind = "past-due"        // checkout, then the next term's payment failed
	dunnedRenewed kind = "past-due-repaid" // checkout, payment failed, then paid
	canceled      kind = "canceled"        // checkout, then canceled at the provider
	declined      kind = "declined"        // an async checkout whose payment then failed
	refunded      kind = "refunded"        // checkout, then its charge refunded in whole
	partRefunded  kind = "part-refunded"   // checkout, then a part of its charge refunded
	disputeWon    kind = "dispute-won"     // checkout, a dispute opened, then won
	disputeLost   kind = "dispute-lost"    // checkout, a dispute opened, then lost
	poison        kind = "poison"          // an input no retry can fix
)

// order is one simulated customer and the provider events it produces.
type order struct {
	n        int
	kind     kind
	purchase demo.Purchase
	events   []providerEvent
	// poisonEventID is the event meant to be dead-lettered.
	poisonEventID string
}

type providerEvent struct {
	id      string
	payload []byte
}

// expected is the model's final state of an order's subscription.
type expected struct {
	status    subscription.Status
	termStart time.Time
	termEnd   time.Time
	gitlab    string // plan GitLab must hold, "" for self-managed
}

// generate builds n orders whose events happen around base. Kinds are drawn
// with fixed weights; every 10th order is self-managed.
func generate(rng *rand.Rand, n int, base time.Time, run string) []order {
	weights := []struct {
		k kind
		w int
	}{{bought, 20}, {renewed, 16}, {pastDue, 12}, {dunnedRenewed, 8}, {canceled, 14}, {declined, 5},
		{refunded, 6}, {partRefunded, 3}, {disputeWon, 3}, {disputeLost, 3}, {poison, 10}}
	orders := make([]order, n)
	for i := range orders {
		r, k := rng.IntN(100), bought
		for _, w := range weights {
			if r < w.w {
				k = w.k
				break
			}
			r -= w.w
		}
		orders[i] = newOrder(i, k, base, run)
	}
	return orders
}

func newOrder(i int, k kind, base time.Time, run string) order {
	id := fmt.Sprintf("%s_%05d", run, i)
	p := demo.Purchase{
		SessionID: "cs_f_" + id, CustomerID: "cus_f_" + id, Email: fmt.Sprintf("buyer.%s@customer.example", id),
		Plan: "premium", Seats: 1 + i%40, NamespaceID: "ns_f_" + id, AutoRenew: true, Paid: true,
	}
	if i%10 == 9 {
		p.NamespaceID, p.InstanceID, p.Plan = "", "inst_f_"+id, "ultimate"
	}
	if k == declined {
		p.Paid = false
	}
	o := order{n: i, kind: k, purchase: p}
	at := base.Add(time.Duration(i) * time.Millisecond)
	checkoutID := "evt_f_co_" + id
	if k == poison && i%2 == 0 {
		p.Plan = "platinum" // no such plan: payment-result refuses the order
		o.purchase = p
		o.poisonEventID = checkoutID
	}
	o.events = append(o.events, providerEvent{checkoutID, p.CheckoutCompleted(checkoutID, at)})
	next := termEnd(at)
	sub := p.SubscriptionID()
	invoice := func(suffix string, paid bool, when time.Time) {
		eid := "evt_f_" + suffix + "_" + id
		o.events = append(o.events, providerEvent{eid, demo.InvoiceEvent(eid, "in_f_"+suffix+"_"+id, p.CustomerID, sub, next, paid, when)})
	}
	switch k {
	case renewed:
		invoice("paid", true, at.Add(2*time.Minute))
	case pastDue:
		invoice("failed", false, at.Add(time.Minute))
	case dunnedRenewed:
		invoice("failed", false, at.Add(time.Minute))
		invoice("paid", true, at.Add(2*time.Minute))
	case declined:
		eid := "evt_f_decl_" + id
		o.events = append(o.events, providerEvent{eid, stripe.NewEvent(eid, "checkout.session.async_payment_failed", at.Add(time.Minute),
			stripe.CheckoutSession(p.SessionID, p.CustomerID, p.Email, "unpaid", p.Amount(), p.Metadata()))})
	case refunded:
		o.events = append(o.events, providerEvent{"evt_f_ref_" + id, p.RefundEvent("evt_f_ref_"+id, p.Amount(), at.Add(3*time.Minute))})
	case partRefunded:
		o.events = append(o.events, providerEvent{"evt_f_pref_" + id, p.RefundEvent("evt_f_pref_"+id, p.Amount()/4, at.Add(3*time.Minute))})
	case disputeWon, disputeLost:
		closed := "won"
		if k == disputeLost {
			closed = "lost"
		}
		o.events = append(o.events,
			providerEvent{"evt_f_dsp_" + id, p.DisputeEvent("evt_f_dsp_"+id, "needs_response", at.Add(3*time.Minute))},
			providerEvent{"evt_f_dspc_" + id, p.DisputeEvent("evt_f_dspc_"+id, closed, at.Add(4*time.Minute))})
	case canceled:
		eid := "evt_f_del_" + id
		o.events = append(o.events, providerEvent{eid, stripe.NewEvent(eid, "customer.subscription.deleted", at.Add(3*time.Minute),
			map[string]any{"id": "sub_stripe_" + id, "object": "subscription", "status": "canceled",
				"metadata": map[string]string{stripe.MetaSubscriptionID: sub}})})
	case poison:
		if o.poisonEventID == "" { // an invoice that names no subscription
			eid := "evt_f_bad_" + id
			obj := stripe.Invoice("in_f_bad_"+id, p.CustomerID, sub, next, 100, true)
			obj["metadata"] = map[string]string{}
			o.events = append(o.events, providerEvent{eid, stripe.NewEvent(eid, "invoice.paid", at.Add(time.Minute), obj)})
			o.poisonEventID = eid
		}
	}
	return o
}

// termEnd is the end of a first term bought at at (terms run whole days, 12 months).
func termEnd(at time.Time) time.Time {
	y, m, d := at.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 12, 0)
}

// want is the model: what each kind of order ends as, whatever the order
// and number of deliveries. nil: no subscription at all.
func (o order) want() *expected {
	at := o.eventsStart()
	start, end := termEnd(at).AddDate(0, -12, 0), termEnd(at)
	e := &expected{status: subscription.Active, termStart: start, termEnd: end, gitlab: o.purchase.Plan}
	switch o.kind {
	case poison:
		if o.purchase.Plan == "platinum" {
			return nil
		}
	case renewed, dunnedRenewed:
		e.termStart, e.termEnd = end, end.AddDate(0, 12, 0)
	case pastDue:
		e.status = subscription.PastDue
	case canceled, declined, refunded, disputeLost:
		// Declined: the subscription never started. Refunded in whole or a
		// dispute lost: what the purchase bought is taken back.
		e.status, e.gitlab = subscription.Canceled, "free"
		if o.kind == declined {
			e.termStart, e.termEnd, e.gitlab = time.Time{}, time.Time{}, ""
		}
	}
	if o.purchase.InstanceID != "" {
		e.gitlab = ""
	}
	return e
}

func (o order) eventsStart() time.Time { return runBase.Add(time.Duration(o.n) * time.Millisecond) }

// runBase is the provider time of the first order; set once per run.
var runBase time.Time
