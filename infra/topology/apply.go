package topology

import (
	"context"
	"fmt"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Apply creates the topology in Pub/Sub (the emulator locally): every topic,
// every dead-letter topic with its pull subscription, and a push
// subscription per function to endpoints[function]. It is safe to repeat:
// what exists is kept.
func (t Topology) Apply(ctx context.Context, c *pubsub.Client, endpoints map[string]string) error {
	project := c.Project()
	topic := func(name string) string { return fmt.Sprintf("projects/%s/topics/%s", project, name) }
	sub := func(name string) string { return fmt.Sprintf("projects/%s/subscriptions/%s", project, name) }

	for _, name := range t.Topics {
		if err := createTopic(ctx, c, topic(name)); err != nil {
			return err
		}
	}
	for name, pullTopic := range t.PullSubscriptions {
		if err := createSubscription(ctx, c, &pubsubpb.Subscription{Name: sub(name), Topic: topic(pullTopic), AckDeadlineSeconds: 60}); err != nil {
			return err
		}
	}
	for _, fn := range t.Subscribers() {
		dlq := DeadLetterTopic(fn)
		if err := createTopic(ctx, c, topic(dlq)); err != nil {
			return err
		}
		if err := createSubscription(ctx, c, &pubsubpb.Subscription{Name: sub(dlq), Topic: topic(dlq), AckDeadlineSeconds: 60}); err != nil {
			return err
		}
		endpoint, ok := endpoints[fn]
		if !ok {
			return fmt.Errorf("topology.Apply: no endpoint for %s", fn)
		}
		d := t.Delivery
		if err := createSubscription(ctx, c, &pubsubpb.Subscription{
			Name:               sub(fn),
			Topic:              topic(t.Functions[fn].Topic),
			PushConfig:         &pubsubpb.PushConfig{PushEndpoint: endpoint},
			AckDeadlineSeconds: d.AckDeadlineSeconds,
			DeadLetterPolicy:   &pubsubpb.DeadLetterPolicy{DeadLetterTopic: topic(dlq), MaxDeliveryAttempts: d.MaxDeliveryAttempts},
			RetryPolicy: &pubsubpb.RetryPolicy{
				MinimumBackoff: durationpb.New(d.MinimumBackoff),
				MaximumBackoff: durationpb.New(d.MaximumBackoff),
			},
		}); err != nil {
			return err
		}
	}
	return nil
}

func createTopic(ctx context.Context, c *pubsub.Client, name string) error {
	_, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: name})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("topology: create topic %s: %w", name, err)
	}
	return nil
}

func createSubscription(ctx context.Context, c *pubsub.Client, s *pubsubpb.Subscription) error {
	_, err := c.SubscriptionAdminClient.CreateSubscription(ctx, s)
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("topology: create subscription %s: %w", s.Name, err)
	}
	return nil
}
