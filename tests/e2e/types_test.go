package e2e

import (
	"context"

	"cloud.google.com/go/pubsub/v2"
)

type (
	ctxT = context.Context
	msgT = pubsub.Message
)
