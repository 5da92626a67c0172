package stripe

import (
	"context"
	"strconv"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v84"

	"fulfillment/shared/domain/catalog"
)

// MetaQuoteID is the metadata key of a checkout session's quote.
const MetaQuoteID = "quote_id"

// SessionLine is one line item of a checkout session, priced inline.
type SessionLine struct {
	Name      string
	UnitCents int64
	Quantity  int64
}

// SessionRequest is a checkout session to create for a stored quote.
type SessionRequest struct {
	QuoteID    string
	Order      catalog.Order
	CustomerID string
	Currency   string
	Lines      []SessionLine
	SuccessURL string
	CancelURL  string
	ExpiresAt  time.Time
	// AllowPromotionCodes lets the buyer enter a promotion code; Stripe
	// reports the discount in total_details.amount_discount.
	AllowPromotionCodes bool
	// PromotionCodeID applies that promotion code (promo_...) to the
	// session instead; Stripe takes one or the other.
	PromotionCodeID string
	// AutomaticTax asks Stripe Tax to add tax on top of the quote.
	AutomaticTax bool
	// Key is the Idempotency-Key: the same key returns the same session.
	Key string
}

// Session is a created checkout session.
type Session struct {
	ID  string
	URL string
}

// CustomerRequest is a Stripe customer to create for a buyer.
type CustomerRequest struct {
	Email, Name, Company string
	// Key is the Idempotency-Key: the same key returns the same customer.
	Key string
	// SubscriptionID, when set, names the subscription the customer is
	// made for (a guest's, at its first charge): kept in its metadata, and
	// a customer already made for it is returned instead of a new one,
	// since Stripe forgets an idempotency key after 24 hours.
	SubscriptionID string
}

// CreateCustomer creates the Stripe customer that will pay and whose
// payment method renewals use.
func (b *Billing) CreateCustomer(ctx context.Context, c CustomerRequest) (string, error) {
	if c.SubscriptionID != "" {
		if id, err := b.customerMadeFor(ctx, c); id != "" || err != nil {
			return id, err
		}
	}
	params := &stripego.CustomerCreateParams{Email: stripego.String(c.Email), Name: stripego.String(c.Name)}
	if c.Company != "" {
		params.AddMetadata("company", c.Company)
	}
	if c.SubscriptionID != "" {
		params.AddMetadata(MetaSubscriptionID, c.SubscriptionID)
	}
	params.SetIdempotencyKey(c.Key)
	cus, err := b.client.V1Customers.Create(ctx, params)
	if err != nil {
		return "", classify("stripe.CreateCustomer", err)
	}
	return cus.ID, nil
}

// customerMadeFor finds, among the customers with c's e-mail, one made for
// c's subscription ("" when none is).
func (b *Billing) customerMadeFor(ctx context.Context, c CustomerRequest) (string, error) {
	params := &stripego.CustomerListParams{Email: stripego.String(c.Email)}
	params.Limit = stripego.Int64(customerPage)
	seen := 0
	for cus, err := range b.client.V1Customers.List(ctx, params) {
		if err != nil {
			return "", classify("stripe.CreateCustomer list", err)
		}
		if cus.Metadata[MetaSubscriptionID] == c.SubscriptionID {
			return cus.ID, nil
		}
		if seen++; seen >= customerPage {
			break // one page: a guest's e-mail has few customers
		}
	}
	return "", nil
}

// customerPage is how many customers of one e-mail are looked through.
const customerPage = 100

// OrderMetadata is the metadata checkout-webhook reads an order from
// (OrderFromMetadata), plus the quote id.
func OrderMetadata(quoteID string, o catalog.Order) map[string]string {
	m := map[string]string{
		MetaQuoteID: quoteID, MetaPlanCode: o.PlanCode, MetaSeats: strconv.Itoa(o.Seats), MetaDeployment: o.Deployment,
		MetaTermMonths: strconv.Itoa(o.TermMonths), MetaAutoRenew: strconv.FormatBool(o.AutoRenew),
	}
	if o.NamespaceID != "" {
		m[MetaNamespaceID] = o.NamespaceID
	}
	if o.InstanceID != "" {
		m[MetaInstanceID] = o.InstanceID
	}
	if o.StorageGB > 0 {
		m[MetaStorageGB] = strconv.Itoa(o.StorageGB)
	}
	if o.ComputeMinutes > 0 {
		m[MetaComputeMinutes] = strconv.Itoa(o.ComputeMinutes)
	}
	return m
}

// PromotionCode finds the active promotion code a buyer gave (Stripe
// matches codes case-insensitively) and returns its id, "" when there is
// none: the answer's code is compared too, so a lookup Stripe answered for
// another code never applies it.
func (b *Billing) PromotionCode(ctx context.Context, code string) (string, error) {
	params := &stripego.PromotionCodeListParams{Code: stripego.String(code), Active: stripego.Bool(true)}
	params.Limit = stripego.Int64(1)
	for pc, err := range b.client.V1PromotionCodes.List(ctx, params) {
		if err != nil {
			return "", classify("stripe.PromotionCode", err)
		}
		if pc.Active && strings.EqualFold(pc.Code, code) {
			return pc.ID, nil
		}
		break
	}
	return "", nil
}

// CreateCheckoutSession creates a payment-mode Checkout Session for the
// quote: its lines priced inline, for the given customer, saving the
// payment method for off-session renewals (setup_future_usage), with the
// quote id and the order in the session's and the payment intent's metadata.
func (b *Billing) CreateCheckoutSession(ctx context.Context, r SessionRequest) (Session, error) {
	meta := OrderMetadata(r.QuoteID, r.Order)
	params := &stripego.CheckoutSessionCreateParams{
		Mode:              stripego.String(string(stripego.CheckoutSessionModePayment)),
		Customer:          stripego.String(r.CustomerID),
		ClientReferenceID: stripego.String(r.QuoteID),
		SuccessURL:        stripego.String(r.SuccessURL),
		CancelURL:         stripego.String(r.CancelURL),
		PaymentIntentData: &stripego.CheckoutSessionCreatePaymentIntentDataParams{
			SetupFutureUsage: stripego.String("off_session"),
			Metadata:         meta,
		},
		Metadata: meta,
	}
	if !r.ExpiresAt.IsZero() {
		params.ExpiresAt = stripego.Int64(r.ExpiresAt.Unix())
	}
	switch {
	case r.PromotionCodeID != "":
		params.Discounts = []*stripego.CheckoutSessionCreateDiscountParams{{PromotionCode: stripego.String(r.PromotionCodeID)}}
	case r.AllowPromotionCodes:
		params.AllowPromotionCodes = stripego.Bool(true)
	}
	if r.AutomaticTax {
		params.AutomaticTax = &stripego.CheckoutSessionCreateAutomaticTaxParams{Enabled: stripego.Bool(true)}
		// Stripe Tax needs the buyer's address on the customer we pass.
		params.CustomerUpdate = &stripego.CheckoutSessionCreateCustomerUpdateParams{Address: stripego.String("auto")}
	}
	for _, l := range r.Lines {
		pd := &stripego.CheckoutSessionCreateLineItemPriceDataParams{
			Currency: stripego.String(r.Currency), UnitAmount: stripego.Int64(l.UnitCents),
			ProductData: &stripego.CheckoutSessionCreateLineItemPriceDataProductDataParams{Name: stripego.String(l.Name)},
		}
		if r.AutomaticTax {
			pd.TaxBehavior = stripego.String("exclusive") // tax on top of our price
		}
		params.LineItems = append(params.LineItems, &stripego.CheckoutSessionCreateLineItemParams{PriceData: pd, Quantity: stripego.Int64(l.Quantity)})
	}
	params.SetIdempotencyKey(r.Key)
	s, err := b.client.V1CheckoutSessions.Create(ctx, params)
	if err != nil {
		return Session{}, classify("stripe.CreateCheckoutSession", err)
	}
	return Session{ID: s.ID, URL: s.URL}, nil
}
