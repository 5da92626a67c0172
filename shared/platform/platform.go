// Package platform opens the GCP clients every function shares: Firestore
// and Pub/Sub for GOOGLE_CLOUD_PROJECT (the emulators when their *_EMULATOR_HOST
// variables are set).
package platform

import (
	"context"
	"errors"

	"fulfillment/shared/config"
	"fulfillment/shared/pubsub"
	"fulfillment/shared/store"
)

// Platform holds the shared clients and settings.
type Platform struct {
	Store           *store.Store
	Publisher       *pubsub.Client
	DeadLetterTopic string
}

// Open connects both clients.
func Open(ctx context.Context) (*Platform, error) {
	env := &config.Env{}
	common := env.ReadCommon()
	if err := env.Err(); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, common.Project)
	if err != nil {
		return nil, err
	}
	pub, err := pubsub.NewClient(ctx, common.Project)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &Platform{Store: st, Publisher: pub, DeadLetterTopic: common.DeadLetterTopic}, nil
}

// Close closes both clients, flushing the publisher first.
func (p *Platform) Close() error {
	return errors.Join(p.Publisher.Close(), p.Store.Close())
}
