package seatusage

import (
	"context"
	"log/slog"

	"fulfillment/shared/domain/clock"
	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/entrypoint"
	"fulfillment/shared/runtime/platform"
)

// Setup builds seat-usage from the environment: SEAT_USAGE_TOKEN_KEY (the
// key bearer tokens are derived from; required), GOOGLE_CLOUD_PROJECT.
func Setup(ctx context.Context, logger *slog.Logger) (entrypoint.Function, error) {
	env := &config.Env{}
	key := env.Required("SEAT_USAGE_TOKEN_KEY")
	if err := env.Err(); err != nil {
		return nil, err
	}
	p, err := platform.Open(ctx)
	if err != nil {
		return nil, err
	}
	return New(Deps{Store: p.Store, TokenKey: []byte(key), Clock: clock.FromEnv(), Logger: logger, Close: p.Close}), nil
}
