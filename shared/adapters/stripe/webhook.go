// Package stripe is the payment provider adapter: webhook signature checks
// and normalization into the internal provider events, and the billing calls
// renewal makes (stripe-go, against Stripe or stripe-mock).
package stripe

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	jsoniter "github.com/json-iterator/go"
	"github.com/stripe/stripe-go/v84/webhook"

	"fulfillment/shared/domain/catalog"
)

// SignatureTolerance is how old a signed webhook may be (Stripe's default).
const SignatureTolerance = 300 * time.Second

// ErrSignature is returned for a missing, malformed, wrong or expired signature.
var ErrSignature = errors.New("invalid Stripe-Signature")

// VerifySignature checks the Stripe-Signature header against every endpoint
// secret (several during a rotation); the header may carry several v1
// signatures, any of which may match.
func VerifySignature(payload []byte, header string, secrets []string) error {
	if header == "" {
		return fmt.Errorf("%w: header missing", ErrSignature)
	}
	var last error
	for _, secret := range secrets {
		err := webhook.ValidatePayloadWithTolerance(payload, header, secret, SignatureTolerance)
		if err == nil {
			return nil
		}
		last = err
	}
	return fmt.Errorf("%w: %v", ErrSignature, last)
}

// The Stripe event types we act on, and the internal type each becomes.
var handledTypes = map[string]string{
	"checkout.session.completed":               catalog.CheckoutCompleted,
	"checkout.session.async_payment_succeeded": catalog.CheckoutAsyncPaymentSucceed,
	"checkout.session.async_payment_failed":    catalog.CheckoutAsyncPaymentFailed,
	"invoice.paid":                             catalog.InvoicePaid,
	"invoice.payment_failed":                   catalog.InvoicePaymentFailed,
	"customer.subscription.deleted":            catalog.ProviderSubscriptionDeleted,
	"invoice.voided":                           catalog.InvoiceVoided,
	"invoice.marked_uncollectible":             catalog.InvoiceUncollectible,
	"charge.refunded":                          catalog.ChargeRefunded,
	"charge.dispute.created":                   catalog.ChargeDisputeCreated,
	"charge.dispute.closed":                    catalog.ChargeDisputeClosed,
}

// InternalType maps a Stripe event type to the internal one; ok is false for
// types we do not act on.
func InternalType(stripeType string) (string, bool) {
	t, ok := handledTypes[stripeType]
	return t, ok
}

// Event is the part of a Stripe event the webhook reads. Decoding only these
// fields is several times cheaper than decoding a whole stripe.Event.
type Event struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Created  int64  `json:"created"`
	Livemode bool   `json:"livemode"`
	Data     struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
	// object is data.object when it decoded with the envelope (the usual
	// case): Normalize then need not read the payload a second time.
	object *object
}

// fastJSON decodes the usual event: json-iterator in encoding/json's
// compatible mode skips the validation pass encoding/json makes before
// decoding; anything it refuses goes the encoding/json way.
var fastJSON = jsoniter.ConfigCompatibleWithStandardLibrary

// decodedEvent is Event with its object decoded in the same pass.
type decodedEvent struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Created  int64  `json:"created"`
	Livemode bool   `json:"livemode"`
	Data     struct {
		Object object `json:"object"`
	} `json:"data"`
}

// ParseEvent decodes the envelope of a Stripe event, and its object in the
// same pass. An object that does not decode leaves the envelope usable:
// Normalize reports the object's error, so the genuine event still reaches
// payment-result, which dead-letters it for a person.
func ParseEvent(payload []byte) (Event, error) {
	var e Event
	var d decodedEvent
	if err := fastJSON.Unmarshal(payload, &d); err == nil {
		e = Event{ID: d.ID, Type: d.Type, Created: d.Created, Livemode: d.Livemode, object: &d.Data.Object}
	} else if err := json.Unmarshal(payload, &e); err != nil {
		return Event{}, fmt.Errorf("stripe.ParseEvent: %w", err)
	}
	if e.ID == "" || e.Type == "" || e.Created == 0 {
		return Event{}, errors.New("stripe.ParseEvent: id, type and created are required")
	}
	return e, nil
}

// object is the union of the fields we read from checkout sessions, invoices
// and subscriptions.
type object struct {
	ID                string            `json:"id"`
	ClientReferenceID string            `json:"client_reference_id"`
	Customer          json.RawMessage   `json:"customer"`
	PaymentStatus     string            `json:"payment_status"`
	AmountTotal       int64             `json:"amount_total"`
	AmountPaid        int64             `json:"amount_paid"`
	AmountDue         int64             `json:"amount_due"`
	Currency          string            `json:"currency"`
	Metadata          map[string]string `json:"metadata"`
	// Invoices: the payment of the invoice (an older API's payment_intent,
	// or the invoice payments list since API version 2025-03-31).
	PaymentIntent json.RawMessage `json:"payment_intent"`
	Payments      *struct {
		Data []struct {
			Payment struct {
				PaymentIntent json.RawMessage `json:"payment_intent"`
			} `json:"payment"`
		} `json:"data"`
	} `json:"payments"`
	// Charges and disputes.
	Invoice         json.RawMessage `json:"invoice"`
	Charge          json.RawMessage `json:"charge"`
	Amount          int64           `json:"amount"`
	AmountRefunded  int64           `json:"amount_refunded"`
	Refunded        bool            `json:"refunded"`
	Status          string          `json:"status"`
	CustomerDetails *struct {
		Email string `json:"email"`
		Name  string `json:"name"`
	} `json:"customer_details"`
	// Checkout sessions: discounts and tax, and where the session came from.
	TotalDetails *struct {
		AmountDiscount int64 `json:"amount_discount"`
		AmountTax      int64 `json:"amount_tax"`
	} `json:"total_details"`
	PaymentLink json.RawMessage `json:"payment_link"`
	SetupIntent json.RawMessage `json:"setup_intent"`
}

// customerID reads "customer", which Stripe sends as an id or an expanded object.
func (o object) customerID() string { return refID(o.Customer) }

// refID reads a reference that is an id or, expanded, an object with one.
func refID(raw json.RawMessage) string {
	var id string
	if json.Unmarshal(raw, &id) == nil {
		return id
	}
	var obj struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(raw, &obj)
	return obj.ID
}

// paymentIntent is the invoice's payment intent, in either API shape.
func (o object) paymentIntent() string {
	if id := refID(o.PaymentIntent); id != "" {
		return id
	}
	if o.Payments != nil {
		for _, p := range o.Payments.Data {
			if id := refID(p.Payment.PaymentIntent); id != "" {
				return id
			}
		}
	}
	return ""
}

// SubscriptionIDForCheckout is our subscription id for a checkout session.
func SubscriptionIDForCheckout(sessionID string) string { return "sub-" + sessionID }

// Normalize turns a Stripe event of a handled type into the internal
// payload. Metadata that cannot be read is reported in the error, but the
// caller still gets every field it could read: the event is genuine (its
// signature checked) and must reach payment-result, which dead-letters it.
func Normalize(e Event) (catalog.ProviderEvent, error) {
	var o object
	if e.object != nil {
		o = *e.object
	} else if err := json.Unmarshal(e.Data.Object, &o); err != nil {
		return catalog.ProviderEvent{}, fmt.Errorf("stripe.Normalize %s: data.object: %w", e.ID, err)
	}
	pe := catalog.ProviderEvent{
		Provider: "stripe", ProviderEventID: e.ID, ProviderType: e.Type,
		OccurredAt: time.Unix(e.Created, 0).UTC(), Currency: o.Currency, Livemode: e.Livemode,
	}
	switch {
	case strings.HasPrefix(e.Type, "charge.dispute."):
		return normalizeDispute(pe, o)
	case strings.HasPrefix(e.Type, "charge."):
		return normalizeCharge(pe, o)
	case strings.HasPrefix(e.Type, "checkout.session."):
		return normalizeCheckout(pe, o)
	case strings.HasPrefix(e.Type, "invoice."):
		return normalizeInvoice(pe, o)
	default: // customer.subscription.*
		pe.SubscriptionID = o.Metadata[MetaSubscriptionID]
		if pe.SubscriptionID == "" {
			return pe, fmt.Errorf("stripe.Normalize %s: metadata.%s missing", e.ID, MetaSubscriptionID)
		}
		return pe, nil
	}
}

func normalizeCheckout(pe catalog.ProviderEvent, o object) (catalog.ProviderEvent, error) {
	pe.CheckoutSessionID = o.ID
	pe.PaymentIntentID = refID(o.PaymentIntent)
	pe.SubscriptionID = SubscriptionIDForCheckout(o.ID)
	pe.PaymentStatus = o.PaymentStatus
	pe.AmountCents = o.AmountTotal
	c := catalog.Customer{ProviderCustomerID: o.customerID()}
	if o.CustomerDetails != nil {
		c.Email, c.Name = o.CustomerDetails.Email, o.CustomerDetails.Name
	}
	pe.Customer = &c
	pe.Checkout = checkoutDetails(o)
	order, err := OrderFromMetadata(o.Metadata)
	pe.Order = &order
	if err != nil {
		return pe, fmt.Errorf("stripe.Normalize %s: %w", pe.ProviderEventID, err)
	}
	return pe, nil
}

// checkoutDetails reads what the quote check needs (checkout.go).
func checkoutDetails(o object) *catalog.CheckoutDetails {
	d := &catalog.CheckoutDetails{
		QuoteID: o.Metadata[MetaQuoteID], PaymentLinkID: refID(o.PaymentLink), SetupIntentID: refID(o.SetupIntent),
	}
	if o.TotalDetails != nil {
		d.DiscountCents, d.TaxCents = o.TotalDetails.AmountDiscount, o.TotalDetails.AmountTax
	}
	return d
}

func normalizeInvoice(pe catalog.ProviderEvent, o object) (catalog.ProviderEvent, error) {
	pe.InvoiceID = o.ID
	pe.SubscriptionID = o.Metadata[MetaSubscriptionID]
	pe.ChargeKey = o.Metadata[MetaCharge]
	pe.PaymentIntentID = o.paymentIntent()
	pe.AmountCents = o.AmountPaid
	if pe.ProviderType != "invoice.paid" {
		pe.AmountCents = o.AmountDue
	}
	if pe.ProviderType == "invoice.payment_failed" {
		pe.FailureReason = "invoice payment failed"
	}
	if pe.SubscriptionID == "" {
		return pe, fmt.Errorf("stripe.Normalize %s: metadata.%s missing", pe.ProviderEventID, MetaSubscriptionID)
	}
	if o.Metadata[MetaTermStart] == "" && pe.ChargeKey != "" {
		return pe, nil // a mid-term charge: its ledger line says what it pays for
	}
	ts, err := time.Parse(time.DateOnly, o.Metadata[MetaTermStart])
	if err != nil {
		return pe, fmt.Errorf("stripe.Normalize %s: metadata.%s: %w", pe.ProviderEventID, MetaTermStart, err)
	}
	pe.TermStart = ts
	return pe, nil
}

// Metadata keys the system reads from and writes to Stripe objects.
const (
	MetaPlanCode       = "plan_code"
	MetaSeats          = "seats"
	MetaDeployment     = "deployment"
	MetaNamespaceID    = "namespace_id"
	MetaInstanceID     = "instance_id"
	MetaStorageGB      = "storage_gb"
	MetaComputeMinutes = "compute_minutes"
	MetaAutoRenew      = "auto_renew"
	MetaTermMonths     = "term_months"
	MetaSubscriptionID = "subscription_id"
	MetaTermStart      = "term_start"
	MetaCharge         = "charge"
)

// OrderFromMetadata reads an order from checkout session metadata. Defaults:
// deployment saas (self_managed when only instance_id is set), auto_renew
// true, a 12-month term. It returns what it could read along with the error.
func OrderFromMetadata(m map[string]string) (catalog.Order, error) {
	o := catalog.Order{
		PlanCode: m[MetaPlanCode], Deployment: m[MetaDeployment],
		NamespaceID: m[MetaNamespaceID], InstanceID: m[MetaInstanceID],
		AutoRenew: true, TermMonths: 12,
	}
	if o.Deployment == "" {
		o.Deployment = catalog.DeploymentSaaS
		if o.NamespaceID == "" && o.InstanceID != "" {
			o.Deployment = catalog.DeploymentSelfManaged
		}
	}
	var errs []error
	readInt := func(key string, dst *int) {
		if v, ok := m[key]; ok && v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("metadata.%s=%q is not a number", key, v))
			}
			*dst = n
		}
	}
	readInt(MetaSeats, &o.Seats)
	readInt(MetaStorageGB, &o.StorageGB)
	readInt(MetaComputeMinutes, &o.ComputeMinutes)
	readInt(MetaTermMonths, &o.TermMonths)
	if v, ok := m[MetaAutoRenew]; ok && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("metadata.%s=%q is not a boolean", MetaAutoRenew, v))
		}
		o.AutoRenew = b
	}
	return o, errors.Join(errs...)
}

// normalizeCharge reads a refund. Charges carry no metadata of ours: the
// subscription is found from the invoice (older API versions) or the
// payment intent.
func normalizeCharge(pe catalog.ProviderEvent, o object) (catalog.ProviderEvent, error) {
	pe.ChargeID = o.ID
	pe.InvoiceID = refID(o.Invoice)
	pe.PaymentIntentID = refID(o.PaymentIntent)
	pe.SubscriptionID = o.Metadata[MetaSubscriptionID]
	pe.AmountCents, pe.RefundedCents, pe.Refunded = o.Amount, o.AmountRefunded, o.Refunded
	if pe.InvoiceID == "" && pe.PaymentIntentID == "" && pe.SubscriptionID == "" {
		return pe, fmt.Errorf("stripe.Normalize %s: charge %s names no invoice or payment intent", pe.ProviderEventID, o.ID)
	}
	return pe, nil
}

// normalizeDispute reads a dispute opened or closed on a charge.
func normalizeDispute(pe catalog.ProviderEvent, o object) (catalog.ProviderEvent, error) {
	pe.ChargeID = refID(o.Charge)
	pe.PaymentIntentID = refID(o.PaymentIntent)
	pe.AmountCents = o.Amount
	pe.SubscriptionID = o.Metadata[MetaSubscriptionID]
	if pe.ProviderType == "charge.dispute.closed" {
		pe.DisputeStatus = o.Status
		if o.Status != "won" && o.Status != "lost" {
			return pe, fmt.Errorf("stripe.Normalize %s: dispute closed as %q, want won or lost", pe.ProviderEventID, o.Status)
		}
	}
	if pe.ChargeID == "" && pe.PaymentIntentID == "" {
		return pe, fmt.Errorf("stripe.Normalize %s: dispute names no charge or payment intent", pe.ProviderEventID)
	}
	return pe, nil
}
