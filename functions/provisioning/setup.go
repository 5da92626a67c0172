package provisioning

import (
	"context"
	"log/slog"

	"fulfillment/shared/adapters/gitlab"
	"fulfillment/shared/domain/license"
	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/entrypoint"
	"fulfillment/shared/runtime/platform"
)

// Setup builds provisioning from the environment: GITLAB_URL, GITLAB_JWT_KEY
// and LICENSE_SIGNING_KEY (base64 Ed25519 seed) are required.
func Setup(ctx context.Context, logger *slog.Logger) (entrypoint.Function, error) {
	env := &config.Env{}
	gitlabURL := env.Required("GITLAB_URL")
	jwtKey := env.Required("GITLAB_JWT_KEY")
	seed := env.Required("LICENSE_SIGNING_KEY")
	if err := env.Err(); err != nil {
		return nil, err
	}
	key, err := license.KeyFromSeed(seed)
	if err != nil {
		return nil, err
	}
	p, err := platform.Open(ctx)
	if err != nil {
		return nil, err
	}
	f := New(Deps{
		Store: p.Store, Publisher: p.Publisher, DeadLetterTopic: p.DeadLetterTopic, Logger: logger, Close: p.Close,
		GitLab: gitlab.NewClient(gitlabURL, []byte(jwtKey), platform.OutboundClient("gitlab", logger)), LicenseKey: key,
	})
	return entrypoint.Serve(f, logger), nil
}
