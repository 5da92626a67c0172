package crmpush

import (
	"context"

	"fulfillment/shared/adapters/salesforce"
	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/platform"
)

// Config are crm-push's settings.
type Config struct {
	config.Common
	// InstanceURL is the Salesforce org's base URL.
	InstanceURL string `env:"SALESFORCE_INSTANCE_URL,required,notEmpty"`
	// AccessToken is an OAuth2 bearer token for Salesforce's REST API.
	AccessToken string `env:"SALESFORCE_ACCESS_TOKEN,required,notEmpty"`
}

// Setup builds crm-push from the environment (Config).
var Setup = platform.SetupEvents(func(_ context.Context, w platform.Wiring[Config]) (*Function, error) {
	return New(Deps{
		Store: w.Store, Publisher: w.Publisher, DeadLetterTopic: w.DeadLetterTopic, Logger: w.Logger, Close: w.Close,
		CRM: salesforce.NewClient(w.Config.InstanceURL, w.Config.AccessToken, platform.OutboundClient("salesforce", w.Logger)),
	}), nil
})
