// Package demo sends the signed Stripe webhooks and Scheduler ticks the
// operator CLI and the end-to-end tests drive the system with: the same
// bytes and headers Stripe and Cloud Scheduler send.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	seatusage "fulfillment/functions/seat-usage"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/httpx"
)

// Purchase describes a checkout to simulate.
type Purchase struct {
	SessionID   string
	CustomerID  string
	Email       string
	Plan        string
	Seats       int
	NamespaceID string // SaaS
	InstanceID  string // self-managed
	AutoRenew   bool
	Paid        bool // false: an async payment method still settling
}

// Metadata is the checkout session metadata carrying the order.
func (p Purchase) Metadata() map[string]string {
	m := map[string]string{
		stripe.MetaPlanCode: p.Plan, stripe.MetaSeats: strconv.Itoa(p.Seats),
		stripe.MetaAutoRenew: strconv.FormatBool(p.AutoRenew),
	}
	if p.InstanceID != "" {
		m[stripe.MetaDeployment], m[stripe.MetaInstanceID] = catalog.DeploymentSelfManaged, p.InstanceID
	} else {
		m[stripe.MetaDeployment], m[stripe.MetaNamespaceID] = catalog.DeploymentSaaS, p.NamespaceID
	}
	return m
}

// CheckoutCompleted is the checkout.session.completed event for p.
func (p Purchase) CheckoutCompleted(eventID string, at time.Time) []byte {
	status := "paid"
	if !p.Paid {
		status = "unpaid"
	}
	return stripe.NewEvent(eventID, "checkout.session.completed", at,
		stripe.CheckoutSession(p.SessionID, p.CustomerID, p.Email, status, p.Amount(), p.Metadata()))
}

// Amount is what p's checkout charges.
func (p Purchase) Amount() int64 { return int64(p.Seats) * 34800 }

// RefundEvent is a charge.refunded event for p's checkout payment, in
// whole when refundedCents is the whole amount.
func (p Purchase) RefundEvent(eventID string, refundedCents int64, at time.Time) []byte {
	return stripe.NewEvent(eventID, "charge.refunded", at,
		stripe.Charge("ch_"+p.SessionID, stripe.PaymentIntentForCheckout(p.SessionID), p.Amount(), refundedCents))
}

// DisputeEvent is a charge.dispute.created (status needs_response) or
// charge.dispute.closed (won or lost) event on p's checkout payment.
func (p Purchase) DisputeEvent(eventID, status string, at time.Time) []byte {
	typ := "charge.dispute.closed"
	if status == "needs_response" {
		typ = "charge.dispute.created"
	}
	return stripe.NewEvent(eventID, typ, at,
		stripe.Dispute("dp_"+p.SessionID, "ch_"+p.SessionID, stripe.PaymentIntentForCheckout(p.SessionID), status, p.Amount()))
}

// SubscriptionID is the id the system gives p's subscription.
func (p Purchase) SubscriptionID() string { return stripe.SubscriptionIDForCheckout(p.SessionID) }

// InvoiceEvent is an invoice.paid or invoice.payment_failed event for a
// subscription's term starting at termStart.
func InvoiceEvent(eventID, invoiceID, customerID, subscriptionID string, termStart time.Time, paid bool, at time.Time) []byte {
	typ := "invoice.payment_failed"
	if paid {
		typ = "invoice.paid"
	}
	return stripe.NewEvent(eventID, typ, at, stripe.Invoice(invoiceID, customerID, subscriptionID, termStart, 34800, paid))
}

// InvoiceEventFor is InvoiceEvent for a given invoice amount.
func InvoiceEventFor(eventID, invoiceID, customerID, subscriptionID string, termStart time.Time, amountCents int64, paid bool, at time.Time) []byte {
	typ := "invoice.payment_failed"
	if paid {
		typ = "invoice.paid"
	}
	return stripe.NewEvent(eventID, typ, at, stripe.Invoice(invoiceID, customerID, subscriptionID, termStart, amountCents, paid))
}

// Response is the webhook's answer.
type Response struct {
	Status int
	Body   string
}

// webhookClient keeps a connection for each purchase sent at once (the
// bench sends 8): Go's default client keeps 2 and dialed the others anew.
var webhookClient = &http.Client{Transport: httpx.KeepingTransport()}

// SendWebhook posts payload to the webhook signed with secret, as Stripe does.
func SendWebhook(ctx context.Context, url, secret string, payload []byte) (Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return Response{}, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Stripe-Signature", stripe.Sign(payload, time.Now(), secret))
	resp, err := webhookClient.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("demo.SendWebhook: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Body: string(bytes.TrimSpace(body))}, nil
}

// Tick publishes a renewal tick as Cloud Scheduler does: a plain message.
func Tick(ctx context.Context, pub *pubsub.Client) (string, error) {
	body, _ := json.Marshal(map[string]string{"job": "renewals", "scheduled_at": time.Now().UTC().Format(time.RFC3339)})
	return pub.PublishRaw(ctx, catalog.TopicRenewalTicks, body, nil)
}

// SendCommand publishes a subscription change on renewal's topic, as the
// operator CLI does; id names the change (it is the charge's idempotency key).
func SendCommand(ctx context.Context, pub *pubsub.Client, id, typ string, cmd catalog.Command, at time.Time) error {
	e, err := cloudevent.New(ctx, id, catalog.SourceOperator, typ, cmd.SubscriptionID, cmd)
	if err != nil {
		return err
	}
	e.SetTime(at)
	return pub.Publish(ctx, catalog.TopicRenewalTicks, e)
}

// SendSeatReport posts a daily seat report to seat-usage with the target's
// bearer token derived from tokenKey, and returns the status and answer.
func SendSeatReport(ctx context.Context, url, tokenKey string, r seatusage.Report) (Response, error) {
	body, _ := json.Marshal(r)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Response{}, err
	}
	target := catalog.NamespaceTarget(r.NamespaceID)
	if r.InstanceID != "" {
		target = catalog.InstanceTarget(r.InstanceID)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+seatusage.Token([]byte(tokenKey), target))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("demo.SendSeatReport: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Body: string(bytes.TrimSpace(answer))}, nil
}
