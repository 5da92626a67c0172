package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	stripego "github.com/stripe/stripe-go/v84"

	"fulfillment/shared/failure"
	"fulfillment/shared/telemetry"
)

// Billing raises and pays invoices through Stripe's API.
type Billing struct {
	client *stripego.Client
}

// NewBilling returns a client for Stripe's API at baseURL ("" for Stripe
// itself; stripe-mock's address locally).
func NewBilling(secretKey, baseURL string) *Billing {
	cfg := &stripego.BackendConfig{
		HTTPClient:        &http.Client{Timeout: 30 * time.Second, Transport: telemetry.Transport(nil)},
		MaxNetworkRetries: stripego.Int64(2), // safe: every call carries an idempotency key
		LeveledLogger:     &stripego.LeveledLogger{Level: stripego.LevelNull},
	}
	if baseURL != "" {
		cfg.URL = stripego.String(baseURL)
	}
	return &Billing{client: stripego.NewClient(secretKey, stripego.WithBackends(stripego.NewBackendsWithConfig(cfg)))}
}

// RenewalInvoice is one term's invoice for one subscription.
type RenewalInvoice struct {
	SubscriptionID string
	CustomerID     string
	TermStart      time.Time
	AmountCents    int64
	Currency       string
	Description    string
}

// IdempotencyKey is the key for one step of one renewal: the same
// subscription and term always give the same key, so a retried or repeated
// renewal never charges twice.
func (r RenewalInvoice) IdempotencyKey(step string) string {
	return fmt.Sprintf("renewal-%s-%s-%s", r.SubscriptionID, r.TermStart.Format(time.DateOnly), step)
}

// ChargeRenewal adds the term's line item, creates the invoice and pays it.
// The outcome arrives later as an invoice.paid or invoice.payment_failed
// webhook; the invoice metadata carries what the webhook needs.
func (b *Billing) ChargeRenewal(ctx context.Context, r RenewalInvoice) (invoiceID string, err error) {
	meta := map[string]string{MetaSubscriptionID: r.SubscriptionID, MetaTermStart: r.TermStart.Format(time.DateOnly)}
	item := &stripego.InvoiceItemCreateParams{
		Customer: stripego.String(r.CustomerID), Amount: stripego.Int64(r.AmountCents),
		Currency: stripego.String(r.Currency), Description: stripego.String(r.Description),
	}
	item.Metadata = meta
	item.SetIdempotencyKey(r.IdempotencyKey("item"))
	if _, err := b.client.V1InvoiceItems.Create(ctx, item); err != nil {
		return "", classify("stripe.ChargeRenewal item", err)
	}
	inv := &stripego.InvoiceCreateParams{
		Customer:                    stripego.String(r.CustomerID),
		AutoAdvance:                 stripego.Bool(false),
		PendingInvoiceItemsBehavior: stripego.String("include"),
		CollectionMethod:            stripego.String("charge_automatically"),
	}
	inv.Metadata = meta
	inv.SetIdempotencyKey(r.IdempotencyKey("invoice"))
	created, err := b.client.V1Invoices.Create(ctx, inv)
	if err != nil {
		return "", classify("stripe.ChargeRenewal invoice", err)
	}
	pay := &stripego.InvoicePayParams{}
	pay.SetIdempotencyKey(r.IdempotencyKey("pay"))
	if _, err := b.client.V1Invoices.Pay(ctx, created.ID, pay); err != nil {
		var se *stripego.Error
		// A declined card is an answer, not a failure of ours: the
		// invoice.payment_failed webhook carries it to payment-result.
		if errors.As(err, &se) && se.Type == stripego.ErrorTypeCard {
			return created.ID, nil
		}
		return created.ID, classify("stripe.ChargeRenewal pay", err)
	}
	return created.ID, nil
}

// classify marks Stripe's 4xx answers (other than 408/409/429) permanent.
func classify(where string, err error) error {
	var se *stripego.Error
	if errors.As(err, &se) && se.HTTPStatusCode >= 400 && se.HTTPStatusCode < 500 &&
		!failure.RetryableStatus(se.HTTPStatusCode) && se.HTTPStatusCode != http.StatusConflict {
		return failure.Permanent(fmt.Errorf("%s: %w", where, err))
	}
	return fmt.Errorf("%s: %w", where, err)
}
