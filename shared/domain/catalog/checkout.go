package catalog

// Events of the checkout function (issue 12): trials, and the alert raised
// when a completed checkout does not match what it was quoted. All go on
// TopicSubscriptionEvents; a trial's subject is its namespace id, a quote
// mismatch's the checkout session id.
const (
	TrialStarted   = "fulfillment.trial.started.v1"
	TrialEnding    = "fulfillment.trial.ending.v1"
	TrialEnded     = "fulfillment.trial.ended.v1"
	TrialConverted = "fulfillment.trial.converted.v1"
	TrialExtended  = "fulfillment.trial.extended.v1"
	// CheckoutQuoteMismatch: a completed checkout was not provisioned
	// because it does not match its quote (or has none we know).
	CheckoutQuoteMismatch = "fulfillment.checkout.quote_mismatch.v1"

	SourceCheckout = "//fulfillment/checkout"
)

// TrialSnapshot is the payload of every trial event.
type TrialSnapshot struct {
	NamespaceID string `json:"namespace_id"`
	PlanCode    string `json:"plan_code"`
	// StartsOn and EndsOn are dates (YYYY-MM-DD).
	StartsOn string   `json:"starts_on"`
	EndsOn   string   `json:"ends_on"`
	Contact  Customer `json:"contact"`
	// SubscriptionID is set on converted: the paid subscription it became.
	SubscriptionID string `json:"subscription_id,omitempty"`
	// ExtendedBy and Reason are set on extended: who extended it and why.
	ExtendedBy string `json:"extended_by,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// QuoteMismatch is the payload of CheckoutQuoteMismatch.
type QuoteMismatch struct {
	QuoteID           string `json:"quote_id"`
	CheckoutSessionID string `json:"checkout_session_id"`
	Reason            string `json:"reason"`
	ExpectedCents     int64  `json:"expected_cents"`
	PaidCents         int64  `json:"paid_cents"`
	Currency          string `json:"currency"`
}

// CheckoutDetails is what a checkout session says about its quote and its
// payment, beyond the order: read by payment-result to check the paid
// amount against the quote (ProviderEvent.Checkout).
type CheckoutDetails struct {
	QuoteID string `json:"quote_id,omitempty"`
	// PaymentLinkID is set for a session started from a Stripe payment link.
	PaymentLinkID string `json:"payment_link_id,omitempty"`
	// DiscountCents and TaxCents are total_details.amount_discount and
	// amount_tax: AmountCents is after both.
	DiscountCents int64 `json:"discount_cents,omitempty"`
	TaxCents      int64 `json:"tax_cents,omitempty"`
	// SetupIntentID is the session's setup intent (a session that saves a
	// card without charging).
	SetupIntentID string `json:"setup_intent_id,omitempty"`
}
