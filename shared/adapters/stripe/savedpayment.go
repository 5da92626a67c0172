package stripe

import (
	"context"
	"strings"

	stripego "github.com/stripe/stripe-go/v84"
)

// DaysUntilDue is how long a customer without a saved payment method has
// to pay an invoice sent to them (collection_method=send_invoice).
const DaysUntilDue = 14

// savedPaymentMethod is the payment method off-session charges of the
// customer use: the customer's invoice_settings.default_payment_method, else
// the one the checkout's payment (or setup) intent saved (from), which it
// then makes the customer's default. "" when the customer has none: its
// invoices are sent for manual payment.
func (b *Billing) savedPaymentMethod(ctx context.Context, customerID, from string) (string, error) {
	cus, err := b.client.V1Customers.Retrieve(ctx, customerID, nil)
	if err != nil {
		return "", classify("stripe.savedPaymentMethod customer", err)
	}
	if cus.InvoiceSettings != nil && cus.InvoiceSettings.DefaultPaymentMethod != nil && cus.InvoiceSettings.DefaultPaymentMethod.ID != "" {
		return cus.InvoiceSettings.DefaultPaymentMethod.ID, nil
	}
	var pm *stripego.PaymentMethod
	if strings.HasPrefix(from, "seti_") {
		si, err := b.client.V1SetupIntents.Retrieve(ctx, from, nil)
		if err != nil {
			return "", classify("stripe.savedPaymentMethod setup intent", err)
		}
		pm = si.PaymentMethod
	} else {
		pi, err := b.client.V1PaymentIntents.Retrieve(ctx, from, nil)
		if err != nil {
			return "", classify("stripe.savedPaymentMethod payment intent", err)
		}
		pm = pi.PaymentMethod
	}
	if pm == nil || pm.ID == "" {
		return "", nil
	}
	params := &stripego.CustomerUpdateParams{InvoiceSettings: &stripego.CustomerUpdateInvoiceSettingsParams{DefaultPaymentMethod: stripego.String(pm.ID)}}
	params.SetIdempotencyKey("default-payment-method-" + customerID + "-" + pm.ID)
	if _, err := b.client.V1Customers.Update(ctx, customerID, params); err != nil {
		return "", classify("stripe.savedPaymentMethod set default", err)
	}
	return pm.ID, nil
}

// sendInvoice finalizes an invoice and e-mails it to the customer for
// manual payment (a customer with no saved payment method).
func (b *Billing) sendInvoice(ctx context.Context, invoiceID, key string) error {
	params := &stripego.InvoiceSendInvoiceParams{}
	params.SetIdempotencyKey(key)
	if _, err := b.client.V1Invoices.SendInvoice(ctx, invoiceID, params); err != nil {
		return classify("stripe.sendInvoice "+invoiceID, err)
	}
	return nil
}
