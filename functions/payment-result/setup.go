package paymentresult

import (
	"context"

	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/platform"
)

// Config are payment-result's settings: only the common ones.
type Config struct {
	config.Common
}

// Setup builds payment-result from the environment (Config).
var Setup = platform.SetupEvents(func(_ context.Context, w platform.Wiring[Config]) (*Function, error) {
	return New(Deps{Store: w.Store, Publisher: w.Publisher, DeadLetterTopic: w.DeadLetterTopic, Logger: w.Logger, Close: w.Close}), nil
})
