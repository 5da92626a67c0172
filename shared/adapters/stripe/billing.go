package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	stripego "github.com/stripe/stripe-go/v84"

	"fulfillment/shared/domain/idempotency"
	"fulfillment/shared/runtime/failure"
	"fulfillment/shared/runtime/httpx"
	"fulfillment/shared/runtime/telemetry"
)

// Billing raises and pays invoices through Stripe's API.
type Billing struct {
	client *stripego.Client
}

// NewBilling returns a client for Stripe's API at baseURL ("" for Stripe
// itself; stripe-mock's address locally). timeout bounds each HTTP call
// (0: 30 s).
func NewBilling(secretKey, baseURL string, timeout time.Duration) *Billing {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	cfg := &stripego.BackendConfig{
		HTTPClient:        &http.Client{Timeout: timeout, Transport: telemetry.Transport(httpx.KeepingTransport())},
		MaxNetworkRetries: stripego.Int64(2), // safe: every call carries an idempotency key
		LeveledLogger:     &stripego.LeveledLogger{Level: stripego.LevelNull},
	}
	if baseURL != "" {
		cfg.URL = stripego.String(baseURL)
	}
	return &Billing{client: stripego.NewClient(secretKey, stripego.WithBackends(stripego.NewBackendsWithConfig(cfg)))}
}

// Bill is one charge to raise: a renewal, a true-up, added seats, an
// upgrade or a pack.
type Bill struct {
	SubscriptionID string
	CustomerID     string
	AmountCents    int64
	Currency       string
	Description    string
	// Key names the charge: the same key never charges twice (Stripe's
	// Idempotency-Key, one per call: see idempotency.ChargeInvoice,
	// ChargeItem and ChargePay).
	Key string
	// TermStart is set for a renewal: the term the invoice pays for, which
	// the invoice.paid webhook carries back.
	TermStart time.Time
	// PaymentFrom is the payment (or setup) intent of the checkout that
	// saved the customer's card (subscriptions bought through the checkout
	// function): the invoice is charged off-session with that card, the
	// customer's default from then on, or sent for manual payment when
	// there is none (savedpayment.go). Empty: charged automatically with
	// whatever Stripe has for the customer, as before.
	PaymentFrom string
	// SendInvoice e-mails the invoice for manual payment: the customer has
	// no card at Stripe (one created for a guest checkout).
	SendInvoice bool
}

// OutcomeUnknownError says a payment call may or may not have charged: it
// timed out or failed in a way that does not tell. It must not be retried
// blindly: ask Stripe (InvoiceState) first.
type OutcomeUnknownError struct {
	InvoiceID string
	Err       error
}

func (e *OutcomeUnknownError) Error() string {
	return fmt.Sprintf("payment of invoice %s: outcome unknown: %v", e.InvoiceID, e.Err)
}

func (e *OutcomeUnknownError) Unwrap() error { return e.Err }

// IsOutcomeUnknown reports whether err is an OutcomeUnknownError, and its invoice.
func IsOutcomeUnknown(err error) (string, bool) {
	var u *OutcomeUnknownError
	if errors.As(err, &u) {
		return u.InvoiceID, true
	}
	return "", false
}

// Charge creates the invoice, adds the line item to it and pays it (Stripe
// finalizes the draft when it is paid). A declined
// card is an answer, not a failure: the invoice.payment_failed webhook
// carries it. A pay call that fails without an answer returns an
// OutcomeUnknownError with the invoice id; the creation steps are safe to
// retry (they charge nothing).
func (b *Billing) Charge(ctx context.Context, inv Bill) (invoiceID string, err error) {
	meta := map[string]string{MetaSubscriptionID: inv.SubscriptionID, MetaCharge: inv.Key}
	if !inv.TermStart.IsZero() {
		meta[MetaTermStart] = inv.TermStart.Format(time.DateOnly)
	}
	// The invoice is created empty and the item added to it by id: an
	// invoice that pulled in the customer's pending items could collect
	// another charge's item, which that charge would then bill again.
	params := &stripego.InvoiceCreateParams{
		Customer:                    stripego.String(inv.CustomerID),
		AutoAdvance:                 stripego.Bool(false),
		PendingInvoiceItemsBehavior: stripego.String("exclude"),
		CollectionMethod:            stripego.String("charge_automatically"),
	}
	var method string
	manual := inv.SendInvoice
	if inv.PaymentFrom != "" && !manual {
		if method, err = b.savedPaymentMethod(ctx, inv.CustomerID, inv.PaymentFrom); err != nil {
			return "", err
		}
		manual = method == ""
		if !manual {
			params.DefaultPaymentMethod = stripego.String(method)
		}
	}
	if manual {
		params.CollectionMethod = stripego.String("send_invoice")
		params.DaysUntilDue = stripego.Int64(DaysUntilDue)
	}
	params.Metadata = meta
	params.SetIdempotencyKey(idempotency.ChargeInvoice(inv.Key))
	created, err := b.client.V1Invoices.Create(ctx, params)
	if err != nil {
		return "", classify("stripe.Charge invoice", err)
	}
	item := &stripego.InvoiceItemCreateParams{
		Customer: stripego.String(inv.CustomerID), Invoice: stripego.String(created.ID), Amount: stripego.Int64(inv.AmountCents),
		Currency: stripego.String(inv.Currency), Description: stripego.String(inv.Description),
	}
	item.Metadata = meta
	item.SetIdempotencyKey(idempotency.ChargeItem(inv.Key))
	if _, err := b.client.V1InvoiceItems.Create(ctx, item); err != nil {
		return "", classify("stripe.Charge item", err)
	}
	if manual {
		return created.ID, b.sendInvoice(ctx, created.ID, idempotency.ChargePay(inv.Key))
	}
	return created.ID, b.payWith(ctx, created.ID, idempotency.ChargePay(inv.Key), method)
}

// RetryPayment tries to pay an open invoice again (dunning); key names the attempt.
func (b *Billing) RetryPayment(ctx context.Context, invoiceID, key string) error {
	return b.pay(ctx, invoiceID, key)
}

func (b *Billing) pay(ctx context.Context, invoiceID, key string) error {
	return b.payWith(ctx, invoiceID, key, "")
}

// payWith pays an invoice, off-session with method when one is given.
func (b *Billing) payWith(ctx context.Context, invoiceID, key, method string) error {
	pay := &stripego.InvoicePayParams{}
	if method != "" {
		pay.PaymentMethod, pay.OffSession = stripego.String(method), stripego.Bool(true)
	}
	pay.SetIdempotencyKey(key)
	_, err := b.client.V1Invoices.Pay(ctx, invoiceID, pay)
	var se *stripego.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se) && se.Type == stripego.ErrorTypeCard:
		return nil // declined: the webhook reports it
	case errors.As(err, &se) && se.HTTPStatusCode == http.StatusConflict:
		// Another call with this key is still in flight: it holds the
		// outcome, and asking again later replays it. Known, and transient.
		return fmt.Errorf("stripe.pay %s: %w", invoiceID, err)
	case errors.As(err, &se) && se.HTTPStatusCode >= 400 && se.HTTPStatusCode < 500 &&
		!failure.RetryableStatus(se.HTTPStatusCode) && se.HTTPStatusCode != http.StatusConflict:
		return failure.Permanent(fmt.Errorf("stripe.pay %s: %w", invoiceID, err))
	}
	return &OutcomeUnknownError{InvoiceID: invoiceID, Err: err}
}

// VoidInvoice voids an unpaid invoice (a renewal the customer declined by
// turning auto-renew off), so nothing, Stripe's own retries included, can
// collect it; key names the call. Voiding an invoice already void is done.
func (b *Billing) VoidInvoice(ctx context.Context, invoiceID, key string) error {
	params := &stripego.InvoiceVoidInvoiceParams{}
	params.SetIdempotencyKey(key)
	if _, err := b.client.V1Invoices.VoidInvoice(ctx, invoiceID, params); err != nil {
		return classify("stripe.VoidInvoice "+invoiceID, err)
	}
	return nil
}

// InvoiceStatus is where Stripe says an invoice is (its status field).
type InvoiceStatus string

// The states of an invoice.
const (
	InvoiceDraft         InvoiceStatus = "draft"
	InvoiceOpen          InvoiceStatus = "open"
	InvoicePaid          InvoiceStatus = "paid"
	InvoiceVoid          InvoiceStatus = "void"
	InvoiceUncollectible InvoiceStatus = "uncollectible"
)

// Final says an invoice in this state will not change any more: paid, void
// or uncollectible.
func (s InvoiceStatus) Final() bool {
	return s == InvoicePaid || s == InvoiceVoid || s == InvoiceUncollectible
}

// InvoiceState is what Stripe says of an invoice: where it is, and the
// payment intent that paid it (what its refunds and disputes name).
type InvoiceState struct {
	Status          InvoiceStatus
	PaymentIntentID string
}

// InvoiceState asks Stripe where an invoice is (draft, open, paid, void or
// uncollectible) and which payment intent paid it: its payments list, which
// Stripe includes only when asked (expand), or the older payment_intent.
func (b *Billing) InvoiceState(ctx context.Context, invoiceID string) (InvoiceState, error) {
	params := &stripego.InvoiceRetrieveParams{}
	params.AddExpand("payments")
	inv, err := b.client.V1Invoices.Retrieve(ctx, invoiceID, params)
	if err != nil {
		return InvoiceState{}, classify("stripe.InvoiceState", err)
	}
	out := InvoiceState{Status: InvoiceStatus(inv.Status)}
	if inv.Payments != nil {
		for _, p := range inv.Payments.Data {
			if p.Payment != nil && p.Payment.PaymentIntent != nil && p.Payment.PaymentIntent.ID != "" {
				out.PaymentIntentID = p.Payment.PaymentIntent.ID
				break
			}
		}
	}
	return out, nil
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
