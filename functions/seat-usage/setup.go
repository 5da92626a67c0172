package seatusage

import (
	"context"

	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/entrypoint"
	"fulfillment/shared/runtime/platform"
)

// Config are seat-usage's settings.
type Config struct {
	config.Common
	// TokenKey is the key namespaces' bearer tokens are derived from.
	TokenKey string `env:"SEAT_USAGE_TOKEN_KEY,required,notEmpty"`
}

// Setup builds seat-usage from the environment (Config).
var Setup = platform.Setup(func(_ context.Context, w platform.Wiring[Config]) (entrypoint.Function, error) {
	return New(Deps{Store: w.Store, TokenKey: []byte(w.Config.TokenKey), Clock: w.Clock, Logger: w.Logger, Close: w.Close}), nil
})
