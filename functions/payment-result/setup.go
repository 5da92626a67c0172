package paymentresult

import (
	"context"

	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/platform"
)

// Config are payment-result's settings.
type Config struct {
	config.Common
	// RequireQuote refuses a completed checkout without a quote id (a
	// session the checkout function did not create), unless its payment
	// link is in CheckoutPaymentLinks. Production keeps the default; the
	// local stack and the older end-to-end tests, which send completions
	// without quotes, set it false.
	RequireQuote bool `env:"CHECKOUT_REQUIRE_QUOTE" envDefault:"true"`
	// PaymentLinks are the Stripe payment links (plink_...) whose sessions
	// are provisioned without a quote.
	PaymentLinks config.List `env:"CHECKOUT_PAYMENT_LINKS"`
}

// Setup builds payment-result from the environment (Config).
var Setup = platform.SetupEvents(func(_ context.Context, w platform.Wiring[Config]) (*Function, error) {
	return New(Deps{Store: w.Store, Publisher: w.Publisher, DeadLetterTopic: w.DeadLetterTopic, Logger: w.Logger, Close: w.Close,
		Quotes: QuotePolicy{Require: w.Config.RequireQuote, PaymentLinks: w.Config.PaymentLinks}}), nil
})
