package renewal

import (
	"context"
	"fmt"
	"sync"
	"time"

	gpubsub "cloud.google.com/go/pubsub/v2"
	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/cloudevent"
)

// BatchPublisher publishes a fan-out's events in batches: hundreds of
// messages per Pub/Sub request instead of one (the shared client sends each
// message alone, for callers that wait on one publish).
type BatchPublisher struct {
	client *gpubsub.Client
	mu     sync.Mutex
	topics map[string]*gpubsub.Publisher
}

// NewBatchPublisher publishes through client.
func NewBatchPublisher(client *gpubsub.Client) *BatchPublisher {
	return &BatchPublisher{client: client, topics: map[string]*gpubsub.Publisher{}}
}

func (p *BatchPublisher) publisher(topic string) *gpubsub.Publisher {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.topics[topic]
	if !ok {
		t = p.client.Publisher(topic)
		t.PublishSettings.CountThreshold = 500
		t.PublishSettings.DelayThreshold = 5 * time.Millisecond
		t.PublishSettings.Timeout = 60 * time.Second
		p.topics[topic] = t
	}
	return t
}

// Publish sends events and waits until Pub/Sub stored them all.
func (p *BatchPublisher) Publish(ctx context.Context, topic string, events ...event.Event) error {
	t := p.publisher(topic)
	results := make([]*gpubsub.PublishResult, 0, len(events))
	for _, e := range events {
		data, attrs := cloudevent.ToMessage(e)
		results = append(results, t.Publish(ctx, &gpubsub.Message{Data: data, Attributes: attrs}))
	}
	for i, r := range results {
		if _, err := r.Get(ctx); err != nil {
			return fmt.Errorf("renewal.BatchPublisher %s to %s: %w", events[i].ID(), topic, err)
		}
	}
	return nil
}

// Stop flushes and stops every topic's publisher.
func (p *BatchPublisher) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.topics {
		t.Stop()
	}
}
