// Package pubsub publishes CloudEvents to Pub/Sub topics (binary mode, see
// shared/cloudevent) with the official v2 client.
package pubsub

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/grpcconn"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/groupcommit"
)

// Publisher publishes events to named topics.
type Publisher interface {
	Publish(ctx context.Context, topic string, events ...event.Event) error
}

// Client publishes with the Pub/Sub v2 client. Callers wait on every publish
// (the webhook answers only after it), so batching is off: a publish goes out
// at once instead of after the client's default 10 ms batching delay.
type Client struct {
	client  *pubsub.Client
	mu      sync.Mutex
	topics  map[string]*pubsub.Publisher
	groups  map[string]*groupcommit.Group[*pubsubpb.PubsubMessage]
	batched bool // see Batched
	shared  bool // the connection belongs to another Client
}

// NewClient connects to Pub/Sub for project (the emulator when PUBSUB_EMULATOR_HOST is set).
func NewClient(ctx context.Context, project string) (*Client, error) {
	c, err := pubsub.NewClient(ctx, project, grpcconn.Options()...)
	if err != nil {
		return nil, fmt.Errorf("pubsub.NewClient: %w", err)
	}
	return &Client{client: c, topics: map[string]*pubsub.Publisher{}, groups: map[string]*groupcommit.Group[*pubsubpb.PubsubMessage]{}}, nil
}

// Batched returns a Client on the same connection that sends up to 500
// messages per request, waiting at most 5 ms to fill one: for fan-outs
// publishing thousands of events at once, where one request per message
// would be the bottleneck. Closing it leaves the connection open.
func (c *Client) Batched() *Client {
	return &Client{client: c.client, topics: map[string]*pubsub.Publisher{}, batched: true, shared: true}
}

// Raw is the underlying client, for administration (topics, subscriptions).
func (c *Client) Raw() *pubsub.Client { return c.client }

func (c *Client) publisher(topic string) *pubsub.Publisher {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.topics[topic]
	if !ok {
		p = c.client.Publisher(topic)
		p.PublishSettings.CountThreshold = 1
		p.PublishSettings.DelayThreshold = time.Millisecond
		p.PublishSettings.Timeout = 15 * time.Second
		if c.batched {
			p.PublishSettings.CountThreshold = 500
			p.PublishSettings.DelayThreshold = 5 * time.Millisecond
			p.PublishSettings.Timeout = 60 * time.Second
		}
		c.topics[topic] = p
	}
	return p
}

// Grouped publishes: at most groupFlights requests per topic at once, of
// at most groupItems messages (Pub/Sub takes up to 1,000 per request).
const (
	groupFlights = 4
	groupItems   = 100
)

// group is topic's group of single-event publishes.
func (c *Client) group(topic string) *groupcommit.Group[*pubsubpb.PubsubMessage] {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.groups[topic]
	if !ok {
		name := topic
		if !strings.HasPrefix(name, "projects/") {
			name = "projects/" + c.client.Project() + "/topics/" + topic
		}
		g = groupcommit.New(func(ctx context.Context, msgs []*pubsubpb.PubsubMessage) []error {
			_, err := c.client.TopicAdminClient.Publish(ctx, &pubsubpb.PublishRequest{Topic: name, Messages: msgs})
			errs := make([]error, len(msgs))
			for i := range errs {
				errs[i] = err
			}
			return errs
		}, groupFlights, groupItems, 15*time.Second)
		c.groups[topic] = g
	}
	return g
}

// Publish sends events to topic and waits until Pub/Sub has stored them all.
// A single event (the webhook's, a consumer's outcome) goes through the
// topic's group: alone when no publish is in flight, else with the others
// that arrived meanwhile, in one request.
func (c *Client) Publish(ctx context.Context, topic string, events ...event.Event) error {
	if len(events) == 1 && !c.batched {
		data, attrs := cloudevent.ToMessage(events[0])
		if err := c.group(topic).Do(ctx, &pubsubpb.PubsubMessage{Data: data, Attributes: attrs}); err != nil {
			return fmt.Errorf("pubsub.Publish %s to %s: %w", events[0].ID(), topic, err)
		}
		return nil
	}
	p := c.publisher(topic)
	results := make([]*pubsub.PublishResult, 0, len(events))
	for _, e := range events {
		data, attrs := cloudevent.ToMessage(e)
		results = append(results, p.Publish(ctx, &pubsub.Message{Data: data, Attributes: attrs}))
	}
	for i, r := range results {
		if _, err := r.Get(ctx); err != nil {
			return fmt.Errorf("pubsub.Publish %s to %s: %w", events[i].ID(), topic, err)
		}
	}
	return nil
}

// PublishRaw sends a plain message (no CloudEvent attributes), as Cloud Scheduler does.
func (c *Client) PublishRaw(ctx context.Context, topic string, data []byte, attrs map[string]string) (string, error) {
	id, err := c.publisher(topic).Publish(ctx, &pubsub.Message{Data: data, Attributes: attrs}).Get(ctx)
	if err != nil {
		return "", fmt.Errorf("pubsub.PublishRaw to %s: %w", topic, err)
	}
	return id, nil
}

// Close flushes and stops every publisher, then the client.
func (c *Client) Close() error {
	c.mu.Lock()
	for _, p := range c.topics {
		p.Stop()
	}
	c.mu.Unlock()
	if c.shared {
		return nil
	}
	return c.client.Close()
}

// Recorder is an in-memory Publisher for unit tests.
type Recorder struct {
	mu     sync.Mutex
	Events map[string][]event.Event
	// Err, when set, is returned by every Publish (a Pub/Sub outage).
	Err error
}

// Publish records events under topic.
func (r *Recorder) Publish(_ context.Context, topic string, events ...event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Err != nil {
		return r.Err
	}
	if r.Events == nil {
		r.Events = map[string][]event.Event{}
	}
	r.Events[topic] = append(r.Events[topic], events...)
	return nil
}

// On returns a copy of what was published on topic.
func (r *Recorder) On(topic string) []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.Events[topic]...)
}
