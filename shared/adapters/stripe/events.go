package stripe

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/stripe/stripe-go/v84/webhook"
)

// This file builds Stripe events in Stripe's wire shape and signs them as
// Stripe does: the operator CLI's demo webhooks and the tests use it.

// NewEvent returns a Stripe event payload of typ wrapping object.
func NewEvent(id, typ string, created time.Time, object map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": id, "object": "event", "api_version": "2025-09-30.clover", "type": typ,
		"created": created.Unix(), "livemode": false, "pending_webhooks": 1,
		"data": map[string]any{"object": object},
	})
	return b
}

// CheckoutSession is a checkout.session object selling an order described by metadata.
func CheckoutSession(id, customerID, email, paymentStatus string, amountCents int64, metadata map[string]string) map[string]any {
	return map[string]any{
		"id": id, "object": "checkout.session", "mode": "payment", "customer": customerID,
		"client_reference_id": nil, "payment_status": paymentStatus, "status": "complete",
		"amount_total": amountCents, "currency": "usd", "metadata": metadata, "payment_intent": PaymentIntentForCheckout(id),
		"customer_details": map[string]any{"email": email, "name": "Demo Customer"},
	}
}

// Invoice is an invoice object for a subscription's term, paid or not.
func Invoice(id, customerID, subscriptionID string, termStart time.Time, amountCents int64, paid bool) map[string]any {
	status, amountPaid := InvoiceOpen, int64(0)
	if paid {
		status, amountPaid = InvoicePaid, amountCents
	}
	return map[string]any{
		"id": id, "object": "invoice", "customer": customerID, "status": string(status),
		"amount_due": amountCents, "amount_paid": amountPaid, "currency": "usd",
		"metadata": map[string]string{MetaSubscriptionID: subscriptionID, MetaTermStart: termStart.Format(time.DateOnly)},
	}
}

// Sign returns a Stripe-Signature header for payload, signed at t with every
// secret given (one v1 signature each), as Stripe signs during a rotation.
func Sign(payload []byte, t time.Time, secrets ...string) string {
	header := fmt.Sprintf("t=%d", t.Unix())
	for _, s := range secrets {
		signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: s, Timestamp: t})
		header += fmt.Sprintf(",v1=%x", signed.Signature)
	}
	return header
}

// PaymentIntentForCheckout is the payment intent the builders give a
// checkout session's payment, which its refunds and disputes name.
func PaymentIntentForCheckout(sessionID string) string { return "pi_" + sessionID }

// Charge is a charge object paid by paymentIntent, refunded by refunded
// cents (in whole when refunded equals amount).
func Charge(id, paymentIntent string, amountCents, refundedCents int64) map[string]any {
	return map[string]any{
		"id": id, "object": "charge", "payment_intent": paymentIntent, "amount": amountCents, "currency": "usd",
		"amount_refunded": refundedCents, "refunded": refundedCents >= amountCents, "status": "succeeded",
	}
}

// Dispute is a dispute object on a charge; status is Stripe's
// (needs_response when opened, won or lost when closed).
func Dispute(id, chargeID, paymentIntent, status string, amountCents int64) map[string]any {
	return map[string]any{
		"id": id, "object": "dispute", "charge": chargeID, "payment_intent": paymentIntent,
		"amount": amountCents, "currency": "usd", "status": status, "reason": "fraudulent",
	}
}
