package provisioning

import (
	"context"

	"fulfillment/shared/adapters/gitlab"
	"fulfillment/shared/domain/license"
	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/platform"
)

// Config are provisioning's settings.
type Config struct {
	config.Common
	// GitLabURL is the GitLab instance whose provisioning API is called.
	GitLabURL string `env:"GITLAB_URL,required,notEmpty"`
	// GitLabJWTKey signs the JWTs that authenticate those calls.
	GitLabJWTKey string `env:"GITLAB_JWT_KEY,required,notEmpty"`
	// LicenseSigningKey is the base64 Ed25519 seed self-managed licenses are
	// signed with.
	LicenseSigningKey string `env:"LICENSE_SIGNING_KEY,required,notEmpty"`
	// ActivationCodePepper keys the hash activation codes are stored under;
	// the licensing function must have the same one. Required: without it a
	// leaked hash can be checked against guesses offline.
	ActivationCodePepper string `env:"ACTIVATION_CODE_PEPPER,required,notEmpty"`
}

// Setup builds provisioning from the environment (Config).
var Setup = platform.SetupEvents(func(_ context.Context, w platform.Wiring[Config]) (*Function, error) {
	key, err := license.KeyFromSeed(w.Config.LicenseSigningKey)
	if err != nil {
		return nil, err
	}
	return New(Deps{
		Store: w.Store, Publisher: w.Publisher, DeadLetterTopic: w.DeadLetterTopic, Logger: w.Logger, Close: w.Close,
		GitLab:     gitlab.NewClient(w.Config.GitLabURL, []byte(w.Config.GitLabJWTKey), platform.OutboundClient("gitlab", w.Logger)),
		LicenseKey: key, CodePepper: []byte(w.Config.ActivationCodePepper),
	}), nil
})
