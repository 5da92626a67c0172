package crmpush

import (
	"context"
	"log/slog"

	"fulfillment/shared/adapters/salesforce"
	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/entrypoint"
	"fulfillment/shared/runtime/platform"
)

// Setup builds crm-push from the environment: SALESFORCE_INSTANCE_URL and
// SALESFORCE_ACCESS_TOKEN (an OAuth2 bearer token) are required.
func Setup(ctx context.Context, logger *slog.Logger) (entrypoint.Function, error) {
	env := &config.Env{}
	instance := env.Required("SALESFORCE_INSTANCE_URL")
	token := env.Required("SALESFORCE_ACCESS_TOKEN")
	if err := env.Err(); err != nil {
		return nil, err
	}
	p, err := platform.Open(ctx)
	if err != nil {
		return nil, err
	}
	f := New(Deps{
		Store: p.Store, Publisher: p.Publisher, DeadLetterTopic: p.DeadLetterTopic, Logger: logger, Close: p.Close,
		CRM: salesforce.NewClient(instance, token, platform.OutboundClient("salesforce", logger)),
	})
	return entrypoint.Serve(f, logger), nil
}
