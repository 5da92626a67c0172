// Package catalog is the internal event catalog: every CloudEvent type the
// functions exchange, the topics that carry them, and their payloads.
// Types are versioned (".v1"): a breaking payload change is a new type.
package catalog

import "time"

// Topics carrying the events between functions.
const (
	TopicProviderEvents     = "provider-events"
	TopicSubscriptionEvents = "subscription-events"
	TopicProvisioningEvents = "provisioning-events"
	TopicRenewalTicks       = "renewal-ticks"
)

// Provider events, published by checkout-webhook on TopicProviderEvents.
// The CloudEvent id is the provider's event id, so a redelivered webhook
// yields the same CloudEvent.
const (
	CheckoutCompleted           = "fulfillment.provider.checkout.completed.v1"
	CheckoutAsyncPaymentSucceed = "fulfillment.provider.checkout.async_payment_succeeded.v1"
	CheckoutAsyncPaymentFailed  = "fulfillment.provider.checkout.async_payment_failed.v1"
	InvoicePaid                 = "fulfillment.provider.invoice.paid.v1"
	InvoicePaymentFailed        = "fulfillment.provider.invoice.payment_failed.v1"
	ProviderSubscriptionDeleted = "fulfillment.provider.subscription.deleted.v1"
	InvoiceVoided               = "fulfillment.provider.invoice.voided.v1"
	InvoiceUncollectible        = "fulfillment.provider.invoice.marked_uncollectible.v1"
	ChargeRefunded              = "fulfillment.provider.charge.refunded.v1"
	ChargeDisputeCreated        = "fulfillment.provider.charge.dispute.created.v1"
	ChargeDisputeClosed         = "fulfillment.provider.charge.dispute.closed.v1"
)

// Subscription events, published on TopicSubscriptionEvents by payment-result
// (and by renewal for expiry) after the state change is committed.
const (
	SubscriptionActivated = "fulfillment.subscription.activated.v1"
	SubscriptionRenewed   = "fulfillment.subscription.renewed.v1"
	SubscriptionPastDue   = "fulfillment.subscription.past_due.v1"
	SubscriptionCanceled  = "fulfillment.subscription.canceled.v1"
	SubscriptionExpired   = "fulfillment.subscription.expired.v1"
	// SubscriptionChanged: seats, plan, packs or auto-renew changed mid-term.
	SubscriptionChanged = "fulfillment.subscription.changed.v1"
	// SubscriptionRenewalNotice: the renewal will be charged soon (notice lead days before term end).
	SubscriptionRenewalNotice = "fulfillment.subscription.renewal_notice.v1"
	// SubscriptionReconciliationNotice: seats are owed this quarter; a prorated invoice follows.
	SubscriptionReconciliationNotice = "fulfillment.subscription.reconciliation_notice.v1"
	// SubscriptionGrace: every payment retry failed; features kept for the grace period.
	SubscriptionGrace = "fulfillment.subscription.grace.v1"
	// SubscriptionSuspended: paid features deprovisioned, data kept.
	SubscriptionSuspended = "fulfillment.subscription.suspended.v1"
	PaymentFailed         = "fulfillment.payment.failed.v1"
	// PaymentDisputed: a customer disputed a charge; the team must answer it.
	PaymentDisputed = "fulfillment.payment.disputed.v1"
	// ChargePaid: a charge's payment was recorded (payload ChargeNotice);
	// what it bought is announced by its subscription event, if any.
	ChargePaid = "fulfillment.payment.succeeded.v1"
)

// Provisioning events, published on TopicProvisioningEvents by provisioning.
const (
	ProvisioningCompleted = "fulfillment.provisioning.completed.v1"
	ProvisioningFailed    = "fulfillment.provisioning.failed.v1"
)

// Sources name the function that produced an event.
const (
	SourceCheckoutWebhook = "//fulfillment/checkout-webhook"
	SourcePaymentResult   = "//fulfillment/payment-result"
	SourceProvisioning    = "//fulfillment/provisioning"
	SourceRenewal         = "//fulfillment/renewal"
)

// What GitLab.com holds for a namespace is set by provisioning (a
// subscription's plan) and by checkout (a trial's). Both hold the lease the
// consumer NamespaceLeaseOwner takes on NamespaceTarget(namespace), so one
// change of a namespace reaches GitLab at a time, and each decides on what
// the other left (a trial never ends over a plan bought meanwhile).
const NamespaceLeaseOwner = "provisioning"

// NamespaceTarget names a GitLab.com namespace as what is provisioned.
func NamespaceTarget(namespaceID string) string { return "namespace:" + namespaceID }

// InstanceTarget names a self-managed instance as what is provisioned.
func InstanceTarget(instanceID string) string { return "instance:" + instanceID }

// Deployment kinds a subscription can be for.
const (
	DeploymentSaaS        = "saas"
	DeploymentSelfManaged = "self_managed"
)

// Order is what a customer bought: read from the checkout session's metadata.
type Order struct {
	PlanCode       string `json:"plan_code" firestore:"plan_code"`
	Seats          int    `json:"seats" firestore:"seats"`
	Deployment     string `json:"deployment" firestore:"deployment"`
	NamespaceID    string `json:"namespace_id,omitempty" firestore:"namespace_id"`
	InstanceID     string `json:"instance_id,omitempty" firestore:"instance_id"`
	StorageGB      int    `json:"storage_gb,omitempty" firestore:"storage_gb"`
	ComputeMinutes int    `json:"compute_minutes,omitempty" firestore:"compute_minutes"`
	AutoRenew      bool   `json:"auto_renew" firestore:"auto_renew"`
	TermMonths     int    `json:"term_months" firestore:"term_months"`
}

// Customer identifies who pays. Email is personal data: never log it.
type Customer struct {
	ProviderCustomerID string `json:"provider_customer_id" firestore:"provider_customer_id"`
	Email              string `json:"email,omitempty" firestore:"email"`
	Name               string `json:"name,omitempty" firestore:"name"`
}

// ProviderEvent is the normalized payload of every provider event type.
// Fields a type does not use are left empty.
type ProviderEvent struct {
	Provider        string    `json:"provider"`
	ProviderEventID string    `json:"provider_event_id"`
	ProviderType    string    `json:"provider_type"`
	OccurredAt      time.Time `json:"occurred_at"`
	// SubscriptionID is our subscription id: derived from the checkout
	// session at purchase, carried in invoice and subscription metadata after.
	SubscriptionID    string    `json:"subscription_id"`
	CheckoutSessionID string    `json:"checkout_session_id,omitempty"`
	InvoiceID         string    `json:"invoice_id,omitempty"`
	PaymentStatus     string    `json:"payment_status,omitempty"`
	AmountCents       int64     `json:"amount_cents,omitempty"`
	Currency          string    `json:"currency,omitempty"`
	TermStart         time.Time `json:"term_start,omitzero"`
	FailureReason     string    `json:"failure_reason,omitempty"`
	// ChargeKey is the ledger key a charge's invoice carries (metadata
	// "charge"): how a mid-term charge's invoice finds its ledger line.
	ChargeKey string `json:"charge_key,omitempty"`
	// PaymentIntentID and ChargeID name the payment of an invoice, which
	// refunds and disputes refer to.
	PaymentIntentID string `json:"payment_intent_id,omitempty"`
	ChargeID        string `json:"charge_id,omitempty"`
	// RefundedCents is the total refunded so far; Refunded says in whole.
	RefundedCents int64 `json:"refunded_cents,omitempty"`
	Refunded      bool  `json:"refunded,omitempty"`
	// DisputeStatus is the closed dispute's status: won or lost.
	DisputeStatus string    `json:"dispute_status,omitempty"`
	Livemode      bool      `json:"livemode,omitempty"`
	Order         *Order    `json:"order,omitempty"`
	Customer      *Customer `json:"customer,omitempty"`
	// Checkout is the session's quote and payment details (checkout.go).
	Checkout *CheckoutDetails `json:"checkout,omitempty"`
	// Invalid says what the webhook could not read in this genuine event; the
	// consumer dead-letters it for a person rather than guess.
	Invalid string `json:"invalid,omitempty"`
}

// SubscriptionSnapshot is the payload of every subscription event: the whole
// state after the change, so consumers never need to read it back.
type SubscriptionSnapshot struct {
	ID         string    `json:"id"`
	Version    int64     `json:"version"`
	Status     string    `json:"status"`
	Order      Order     `json:"order"`
	Customer   Customer  `json:"customer"`
	TermStart  time.Time `json:"term_start"`
	TermEnd    time.Time `json:"term_end"`
	PurchaseID string    `json:"purchase_id"`
	Reason     string    `json:"reason,omitempty"`
	// Seat usage this term and what the next term will be charged for.
	MaxSeatsUsed int    `json:"max_seats_used,omitempty"`
	SeatsOwed    int    `json:"seats_owed,omitempty"`
	RenewalSeats int    `json:"renewal_seats,omitempty"`
	PendingPlan  string `json:"pending_plan,omitempty"`
	// Charge is the billing ledger line the change was paid by or raised,
	// when it has one: receipts show what was charged, not a list price.
	Charge *Charge `json:"charge,omitempty"`
	// Schedule is what the producer will do next, and when, under its own
	// settings (renewal's events only): a notice tells these dates, not
	// ones recomputed by its reader's clock after a late delivery.
	Schedule []ScheduledStep `json:"schedule,omitempty"`
}

// ScheduledStep is one step still to come: what, when, and for a true-up
// the amount it will invoice (integer cents, at the snapshot's seats).
type ScheduledStep struct {
	Action      string    `json:"action"`
	At          time.Time `json:"at"`
	AmountCents int64     `json:"amount_cents,omitempty"`
}

// Charge is a billing ledger line as it is announced: integer cents, tax
// kept apart from the amount, the currency it was charged in.
type Charge struct {
	Key         string `json:"key"`
	Kind        string `json:"kind"`
	Description string `json:"description,omitempty"`
	// AmountCents is what was paid (what was quoted while unpaid), tax excluded.
	AmountCents int64     `json:"amount_cents"`
	TaxCents    int64     `json:"tax_cents,omitempty"`
	Currency    string    `json:"currency"`
	InvoiceID   string    `json:"invoice_id,omitempty"`
	Outcome     string    `json:"outcome"`
	At          time.Time `json:"at"`
	// Seats is how many seats the line buys (seats and true-up lines).
	Seats int `json:"seats,omitempty"`
}

// ChargeNotice is the payload of ChargePaid.
type ChargeNotice struct {
	SubscriptionID string `json:"subscription_id"`
	Charge         Charge `json:"charge"`
}

// PaymentFailure is the payload of PaymentFailed.
type PaymentFailure struct {
	SubscriptionID  string    `json:"subscription_id"`
	ProviderEventID string    `json:"provider_event_id"`
	InvoiceID       string    `json:"invoice_id,omitempty"`
	AmountCents     int64     `json:"amount_cents,omitempty"`
	Reason          string    `json:"reason,omitempty"`
	OccurredAt      time.Time `json:"occurred_at"`
	// DunningSince and Retries are the renewal's dunning once this failure
	// was applied (its first failure, the retries made), so the next retry
	// told is this failure's, however late the event is read.
	DunningSince time.Time `json:"dunning_since,omitzero"`
	Retries      int       `json:"retries,omitempty"`
}

// ProvisioningResult is the payload of ProvisioningCompleted and ProvisioningFailed.
type ProvisioningResult struct {
	SubscriptionID string `json:"subscription_id"`
	Version        int64  `json:"version"`
	Target         string `json:"target"`
	PurchaseID     string `json:"purchase_id"`
	PlanCode       string `json:"plan_code"`
	Seats          int    `json:"seats"`
	LicenseID      string `json:"license_id,omitempty"`
	Error          string `json:"error,omitempty"`
}
