package model

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"pgregory.net/rapid"

	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/proration"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/failure"
)

// Charge kinds, from the charge's key.
const (
	kindCheckout = "checkout"
	kindRenewal  = "renewal"
	kindTrueUp   = "trueup"
	kindChange   = "change"
)

// bought is what a charge pays for, in the term [termStart, termEnd).
type bought struct {
	termStart, termEnd time.Time
	// base: a purchase or renewal, the whole term at plan and seats.
	base           bool
	plan           string
	seats          int
	storageGB      int
	computeMinutes int
	upgradeTo      string // an upgrade to this plan for the rest of the term
}

// invoice is one charge the provider holds.
type invoice struct {
	id, sub, kind string
	bill          stripe.Bill
	createdAt     time.Time
	paid          bool
	paidAt        time.Time
	voided        bool
	attempts      []time.Time // payment attempts (first pay and retries)
	// paymentIntent pays the invoice; its charge is "ch_"+id.
	paymentIntent string
	// refundedCents is what was refunded at the provider; dispute is "",
	// "open", "won" or "lost".
	refundedCents int64
	dispute       string
	// takenBack: refunded in whole or dispute lost at the provider;
	// takeBackKnown: its webhook was delivered, from when nothing the
	// charge bought may be granted.
	takenBack, takeBackKnown bool
	bought                   bought
	// priceMin and priceMax bound the catalog price of what it bought.
	priceMin, priceMax int64
	priceWhy           string
	// recorded: whether charge_recorded found it with the subscription.
	recorded   int
	unrecorded string
}

const (
	recordedUnknown = iota
	recordedYes
	recordedNo
)

// webhook is a provider event waiting to be delivered.
type webhook struct {
	e       event.Event
	created time.Time
	desc    string
	// delivered runs when the webhook is delivered (nil: nothing to note).
	delivered func()
}

// Payment outcomes, decided by the journey at each payment attempt.
const (
	outcomePaid = iota
	outcomeDeclined
	outcomeUnknownPaid     // timed out; the payment went through
	outcomeUnknownDeclined // timed out; the card was declined
)

// provider is an in-process payment provider (renewal.Biller): it records
// every charge, honours idempotency keys (the same key returns the same
// invoice and never charges twice), lets the journey decide each payment
// attempt's outcome, and queues the webhooks Stripe would send.
type provider struct {
	h        *harness
	invoices []*invoice
	byKey    map[string]*invoice
	byID     map[string]*invoice
	payKeys  map[string]bool
	outbox   []webhook
	billed   int64
	refunded int64
	// charges counts payment attempts, declined counts those declined.
	charges, declined int
}

func newProvider(h *harness) *provider {
	return &provider{h: h, byKey: map[string]*invoice{}, byID: map[string]*invoice{}, payKeys: map[string]bool{}}
}

func (p *provider) outcome(what string) int {
	n := rapid.IntRange(0, 19).Draw(p.h.t, "outcome of "+what)
	switch {
	case n < 14:
		return outcomePaid
	case n < 18:
		return outcomeDeclined
	case n == 18:
		return outcomeUnknownPaid
	}
	return outcomeUnknownDeclined
}

func kindOf(key string) string {
	for _, k := range []string{kindRenewal, kindTrueUp, kindChange} {
		if strings.HasPrefix(key, k+"-") {
			return k
		}
	}
	return "other"
}

// Charge creates the invoice and pays it (renewal.Biller).
func (p *provider) Charge(_ context.Context, b stripe.Bill) (string, error) {
	if inv, ok := p.byKey[b.Key]; ok {
		if inv.bill.AmountCents != b.AmountCents || inv.bill.Currency != b.Currency {
			p.h.violate(invChargeEqualsPrice, "key %s reused with %d %s, first charged %d %s", b.Key, b.AmountCents, b.Currency, inv.bill.AmountCents, inv.bill.Currency)
			return "", failure.Permanentf("stripe: keys for idempotent requests can only be used with the same parameters (%s)", b.Key)
		}
		return inv.id, nil // the first call's answer
	}
	inv := &invoice{id: fmt.Sprintf("in_%06d", len(p.invoices)+1), sub: b.SubscriptionID, kind: kindOf(b.Key), bill: b, createdAt: p.h.now()}
	inv.paymentIntent = "pi_" + inv.id
	p.price(inv)
	p.invoices = append(p.invoices, inv)
	p.byKey[b.Key], p.byID[inv.id] = inv, inv
	return inv.id, p.attempt(inv, b.Key)
}

// RetryPayment pays an open invoice again (renewal.Biller).
func (p *provider) RetryPayment(_ context.Context, invoiceID, key string) error {
	if p.payKeys[key] {
		return nil
	}
	inv := p.byID[invoiceID]
	switch {
	case inv == nil:
		return failure.Permanentf("stripe: no such invoice: %q", invoiceID)
	case inv.paid:
		return failure.Permanentf("stripe: invoice %s is already paid", invoiceID)
	case inv.voided:
		return failure.Permanentf("stripe: invoice %s is void and cannot be paid", invoiceID)
	}
	p.payKeys[key] = true
	return p.attempt(inv, key)
}

// InvoiceState is paid, void or open, and the payment intent that paid it
// (renewal.Biller).
func (p *provider) InvoiceState(_ context.Context, invoiceID string) (stripe.InvoiceState, error) {
	inv := p.byID[invoiceID]
	switch {
	case inv == nil:
		return stripe.InvoiceState{}, failure.Permanentf("stripe: no such invoice: %q", invoiceID)
	case inv.paid:
		return stripe.InvoiceState{Status: stripe.InvoicePaid, PaymentIntentID: inv.paymentIntent}, nil
	case inv.voided:
		return stripe.InvoiceState{Status: stripe.InvoiceVoid}, nil
	}
	return stripe.InvoiceState{Status: stripe.InvoiceOpen}, nil
}

// CreateCustomer names a customer for a guest's subscription (renewal.Biller);
// the model's checkouts always carry one, so it is never asked.
func (p *provider) CreateCustomer(_ context.Context, c stripe.CustomerRequest) (string, error) {
	return "cus_" + c.Key, nil
}

// VoidInvoice voids an unpaid invoice, as Stripe does; a paid one is refused.
func (p *provider) VoidInvoice(_ context.Context, invoiceID, _ string) error {
	inv := p.byID[invoiceID]
	switch {
	case inv == nil:
		return failure.Permanentf("stripe: no such invoice: %q", invoiceID)
	case inv.paid:
		return failure.Permanentf("stripe: invoice %s is paid and cannot be voided", invoiceID)
	}
	inv.voided = true
	p.h.t.Logf("    provider: %s voided", invoiceID)
	return nil
}

// attempt is one payment attempt on inv: the journey decides its outcome.
func (p *provider) attempt(inv *invoice, key string) error {
	p.payKeys[key] = true
	p.h.checkChargeAllowed(inv)
	now := p.h.now()
	inv.attempts = append(inv.attempts, now)
	p.charges++
	o := p.outcome(fmt.Sprintf("%s %s (%d cents)", inv.id, inv.bill.Key, inv.bill.AmountCents))
	p.h.t.Logf("    provider: %s %s %d cents for %q: %s", inv.id, inv.bill.Key, inv.bill.AmountCents, inv.bill.Description, outcomeName(o))
	if o == outcomePaid || o == outcomeUnknownPaid {
		inv.paid, inv.paidAt = true, now
		p.billed += inv.bill.AmountCents
		p.queueInvoiceEvent(inv, "invoice.paid")
	} else {
		p.declined++
		p.queueInvoiceEvent(inv, "invoice.payment_failed")
	}
	if o == outcomeUnknownPaid || o == outcomeUnknownDeclined {
		return &stripe.OutcomeUnknownError{InvoiceID: inv.id, Err: errors.New("context deadline exceeded (Client.Timeout exceeded while awaiting headers)")}
	}
	return nil
}

func outcomeName(o int) string {
	return [...]string{"paid", "declined", "outcome unknown (paid)", "outcome unknown (declined)"}[o]
}

// queueInvoiceEvent queues the invoice webhook Stripe sends, normalized as
// checkout-webhook publishes it.
func (p *provider) queueInvoiceEvent(inv *invoice, typ string) {
	meta := map[string]string{stripe.MetaSubscriptionID: inv.sub, stripe.MetaCharge: inv.bill.Key}
	if !inv.bill.TermStart.IsZero() {
		meta[stripe.MetaTermStart] = inv.bill.TermStart.Format(time.DateOnly)
	}
	paid := int64(0)
	status := "open"
	switch typ {
	case "invoice.paid":
		paid, status = inv.bill.AmountCents, "paid"
	case "invoice.voided":
		status = "void"
	}
	obj := map[string]any{
		"id": inv.id, "object": "invoice", "customer": inv.bill.CustomerID, "status": status,
		"amount_due": inv.bill.AmountCents, "amount_paid": paid, "currency": inv.bill.Currency, "metadata": meta,
	}
	if typ == "invoice.paid" {
		// The payment's intent (API versions before 2025-03-31 carry it on
		// the invoice): payment-result indexes it, and the charge's
		// refunds and disputes name only it.
		obj["payment_intent"] = inv.paymentIntent
	}
	p.queue(typ, obj, fmt.Sprintf("%s %s", typ, inv.id), nil)
}

// queueChargeEvent queues a refund (charge.refunded) of inv's charge.
func (p *provider) queueChargeEvent(inv *invoice) {
	full := inv.refundedCents >= inv.bill.AmountCents
	obj := map[string]any{
		"id": "ch_" + inv.id, "object": "charge", "amount": inv.bill.AmountCents, "amount_refunded": inv.refundedCents,
		"refunded": full, "currency": inv.bill.Currency, "payment_intent": inv.paymentIntent, "status": "succeeded",
	}
	p.queue("charge.refunded", obj, fmt.Sprintf("charge.refunded %s (%d of %d cents)", inv.id, inv.refundedCents, inv.bill.AmountCents), p.takeBackNoted(inv, full))
}

// queueDisputeEvent queues a dispute opened (status needs_response) or
// closed (won or lost) on inv's charge.
func (p *provider) queueDisputeEvent(inv *invoice, typ, status string) {
	obj := map[string]any{
		"id": "dp_" + inv.id, "object": "dispute", "charge": "ch_" + inv.id, "payment_intent": inv.paymentIntent,
		"amount": inv.bill.AmountCents, "currency": inv.bill.Currency, "status": status,
	}
	p.queue(typ, obj, fmt.Sprintf("%s %s (%s)", typ, inv.id, status), p.takeBackNoted(inv, status == "lost"))
}

// takeBackNoted marks, on delivery, that the system was told the charge was taken back.
func (p *provider) takeBackNoted(inv *invoice, takesBack bool) func() {
	if !takesBack {
		return nil
	}
	return func() { inv.takeBackKnown = true }
}

// queue normalizes a Stripe event as checkout-webhook does and puts it in the outbox.
func (p *provider) queue(typ string, obj map[string]any, desc string, delivered func()) {
	e := p.normalized(p.h.nextID("evt_"), typ, obj)
	p.outbox = append(p.outbox, webhook{e: e, created: p.h.now(), desc: desc, delivered: delivered})
}

func (p *provider) normalized(id, typ string, obj map[string]any) event.Event {
	raw := stripe.NewEvent(id, typ, p.h.now(), obj)
	ev, err := stripe.ParseEvent(raw)
	if err != nil {
		p.h.t.Fatalf("provider: %v", err)
	}
	pe, err := stripe.Normalize(ev)
	if err != nil {
		pe.Provider, pe.ProviderEventID, pe.ProviderType = "stripe", ev.ID, ev.Type
		pe.Invalid = err.Error()
	}
	internal, _ := stripe.InternalType(typ)
	ce, err := cloudevent.New(p.h.ctx, ev.ID, catalog.SourceCheckoutWebhook, internal, pe.SubscriptionID, pe)
	if err != nil {
		p.h.t.Fatalf("provider: %v", err)
	}
	ce.SetTime(p.h.now())
	return ce
}

// checkout sells order through a paid checkout session and returns the
// checkout.session.completed event.
func (p *provider) checkout(session, customer string, o catalog.Order) event.Event {
	plan, _ := catalog.LookupPlan(o.PlanCode)
	amount := plan.TermPriceCents(o)
	start := day(p.h.now())
	inv := &invoice{id: session, sub: stripe.SubscriptionIDForCheckout(session), kind: kindCheckout, createdAt: p.h.now(),
		bill: stripe.Bill{SubscriptionID: stripe.SubscriptionIDForCheckout(session), CustomerID: customer, AmountCents: amount, Currency: "usd", Key: "checkout-" + session},
		paid: true, paidAt: p.h.now(), attempts: []time.Time{p.h.now()}, paymentIntent: "pi_" + session,
		bought: bought{termStart: start, termEnd: start.AddDate(0, o.TermMonths, 0), base: true, plan: o.PlanCode, seats: o.Seats,
			storageGB: o.StorageGB, computeMinutes: o.ComputeMinutes},
		priceMin: amount, priceMax: amount, priceWhy: "checkout at list price",
	}
	p.invoices = append(p.invoices, inv)
	p.byKey[inv.bill.Key], p.byID[inv.id] = inv, inv
	p.billed += amount
	p.charges++
	meta := map[string]string{
		stripe.MetaPlanCode: o.PlanCode, stripe.MetaSeats: fmt.Sprint(o.Seats), stripe.MetaDeployment: o.Deployment,
		stripe.MetaNamespaceID: o.NamespaceID, stripe.MetaAutoRenew: fmt.Sprint(o.AutoRenew), stripe.MetaTermMonths: fmt.Sprint(o.TermMonths),
	}
	if o.InstanceID != "" {
		meta[stripe.MetaInstanceID] = o.InstanceID
	}
	if o.StorageGB > 0 {
		meta[stripe.MetaStorageGB] = fmt.Sprint(o.StorageGB)
	}
	if o.ComputeMinutes > 0 {
		meta[stripe.MetaComputeMinutes] = fmt.Sprint(o.ComputeMinutes)
	}
	obj := stripe.CheckoutSession(session, customer, "buyer@example.com", "paid", amount, meta)
	obj["payment_intent"] = inv.paymentIntent // what the purchase's refunds and disputes name
	return p.normalized(p.h.nextID("evt_"), "checkout.session.completed", obj)
}

func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// price works out what a charge buys (from its key, its description and
// the command or subscription it came from) and the catalog price of that,
// with the domain's pricing functions.
func (p *provider) price(inv *invoice) {
	h := p.h
	s := h.sub(inv.sub)
	if s == nil {
		inv.priceWhy = "charge for an unknown subscription"
		inv.priceMin, inv.priceMax = 0, 0
		return
	}
	b := inv.bill
	months := s.Order.TermMonths
	term := func(o catalog.Order) int64 {
		plan, err := catalog.LookupPlan(o.PlanCode)
		if err != nil {
			return -1
		}
		o.TermMonths = months
		return plan.TermPriceCents(o)
	}
	inv.bought = bought{termStart: s.TermStart, termEnd: s.TermEnd}
	switch inv.kind {
	case kindRenewal:
		// "<plan>, <seats> seats, term from <date>"
		var planCode string
		var seats int
		if i := strings.Index(b.Description, ","); i > 0 {
			planCode = b.Description[:i]
			_, _ = fmt.Sscanf(b.Description[i+1:], " %d seats", &seats)
		}
		start := b.TermStart
		inv.bought = bought{termStart: start, termEnd: start.AddDate(0, months, 0), base: true, plan: planCode, seats: seats,
			storageGB: s.Order.StorageGB, computeMinutes: s.Order.ComputeMinutes}
		c := term(catalog.Order{PlanCode: planCode, Seats: seats, StorageGB: s.Order.StorageGB, ComputeMinutes: s.Order.ComputeMinutes})
		inv.priceMin, inv.priceMax, inv.priceWhy = c, c, fmt.Sprintf("a %d-month term of %s with %d seats, %d GB, %d minutes", months, planCode, seats, s.Order.StorageGB, s.Order.ComputeMinutes)
	case kindTrueUp:
		var q, seats int
		_, _ = fmt.Sscanf(b.Description, "quarter %d true-up: %d seats", &q, &seats)
		inv.bought.seats = seats
		seatTerm := term(catalog.Order{PlanCode: s.Order.PlanCode, Seats: seats})
		quarter := proration.AddMonths(s.TermStart, 3*q)
		inv.priceMax = proration.Cents(seatTerm, s.TermStart, s.TermEnd, quarter)
		inv.priceMin = proration.Cents(seatTerm, s.TermStart, s.TermEnd, h.now())
		inv.priceWhy = fmt.Sprintf("%d %s seats prorated from quarter %d (%s) or later to %s", seats, s.Order.PlanCode, q, quarter.Format(time.DateOnly), s.TermEnd.Format(time.DateOnly))
	case kindChange:
		c, ok := h.commands[strings.TrimPrefix(b.Key, "change-")]
		if !ok {
			inv.priceWhy = "a change no command asked for"
			return
		}
		switch c.typ {
		case catalog.CommandAddSeats:
			inv.bought.seats = c.cmd.Seats
			cents := proration.Cents(term(catalog.Order{PlanCode: s.Order.PlanCode, Seats: c.cmd.Seats}), s.TermStart, s.TermEnd, c.at)
			inv.priceMin, inv.priceMax = cents, cents
			inv.priceWhy = fmt.Sprintf("%d %s seats prorated from %s to %s", c.cmd.Seats, s.Order.PlanCode, c.at.Format(time.DateOnly), s.TermEnd.Format(time.DateOnly))
		case catalog.CommandChangePlan:
			inv.bought.upgradeTo = c.cmd.PlanCode
			to := s.Order
			to.PlanCode = c.cmd.PlanCode
			cents := proration.Upgrade(term(s.Order), term(to), s.TermStart, s.TermEnd, c.at)
			inv.priceMin, inv.priceMax = cents, cents
			inv.priceWhy = fmt.Sprintf("upgrade %s -> %s prorated from %s", s.Order.PlanCode, c.cmd.PlanCode, c.at.Format(time.DateOnly))
		case catalog.CommandAddPack:
			o := catalog.Order{PlanCode: s.Order.PlanCode}
			if c.cmd.PackKind == subscription.PackStorage {
				o.StorageGB, inv.bought.storageGB = c.cmd.PackAmount, c.cmd.PackAmount
			} else {
				o.ComputeMinutes, inv.bought.computeMinutes = c.cmd.PackAmount, c.cmd.PackAmount
			}
			cents := proration.Cents(term(o), s.TermStart, s.TermEnd, c.at)
			inv.priceMin, inv.priceMax = cents, cents
			inv.priceWhy = fmt.Sprintf("%s pack of %d prorated from %s", c.cmd.PackKind, c.cmd.PackAmount, c.at.Format(time.DateOnly))
		default:
			inv.priceWhy = "a charge for " + c.typ + ", which costs nothing"
		}
	default:
		inv.priceWhy = "a charge of an unknown kind"
	}
}

// stripeRetryWindow is how long Stripe retries a webhook delivery.
const stripeRetryWindow = 3 * 24 * time.Hour

// deliverWebhooks sends the outbox to provider-events. With chaos, the
// journey decides each webhook's fate (delivered, twice, held for later,
// lost) and their order; a webhook held back for Stripe's whole retry
// window is delivered.
func (p *provider) deliverWebhooks(chaos bool) {
	send := p.outbox
	p.outbox = nil
	if len(send) == 0 {
		return
	}
	if chaos && len(send) > 1 {
		send = rapid.Permutation(send).Draw(p.h.t, "webhook order")
	}
	var events []event.Event
	for _, w := range send {
		fate := 0
		if chaos && p.h.now().Sub(w.created) < stripeRetryWindow {
			fate = rapid.IntRange(0, 3).Draw(p.h.t, "fate of "+w.desc)
		}
		if (fate == 0 || fate == 1) && w.delivered != nil {
			w.delivered()
		}
		switch fate {
		case 0:
			events = append(events, w.e)
		case 1:
			p.h.t.Logf("    webhook %s delivered twice", w.desc)
			events = append(events, w.e, w.e)
		case 2:
			p.h.t.Logf("    webhook %s held back (Stripe retries later)", w.desc)
			p.outbox = append(p.outbox, w)
		case 3:
			p.h.t.Logf("    webhook %s lost", w.desc)
		}
	}
	if len(events) > 0 {
		p.h.publish(catalog.TopicProviderEvents, events...)
	}
}
