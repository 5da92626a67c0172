package localstack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"fulfillment/shared/runtime/cloudevent"
)

// TwoHops is one message's way through two push hops: its whole time, and
// how long of it the emulator held the message between each publish and its
// push (its push loops sleep up to 100 ms when idle; GCP's push does not).
type TwoHops struct{ Total, EmulatorWait time.Duration }

// Own is the time the hops took beside the emulator's waits.
func (h TwoHops) Own() time.Duration { return h.Total - h.EmulatorWait }

// IdlePushSleep is how long the Pub/Sub emulator's push loops sleep when idle.
const IdlePushSleep = 100 * time.Millisecond

// PauseBefore is how long to wait before the i-th of messages sent one at a
// time: a send made just as the last one arrived finds the emulator's loops
// in the same phase each time, so the pauses spread the sends over their
// idle sleep (37 is prime to 100: every millisecond of it within 100 sends).
func PauseBefore(i int) time.Duration {
	return time.Duration(i*37%100) * IdlePushSleep / 100
}

// HopFloor measures the local transport alone, as the floor under the
// pipeline's latency: n messages, one at a time (PauseBefore each), each
// published to a topic, pushed by the emulator through a redeliverer (as
// every function's subscription is) to a handler that only publishes it on
// to a second topic, pushed the same way to a handler that notes its
// arrival: publish to second push.
func (s *Stack) HopFloor(ctx context.Context, n int) ([]TwoHops, error) {
	a, b := fmt.Sprintf("hop-floor-%d-a", s.hopRuns.Add(1)), fmt.Sprintf("hop-floor-%d-b", s.hopRuns.Load())
	arrived := make(chan string, 1)
	second := httptest.NewServer(pushHandler(func(m cloudevent.Message) error {
		select {
		case arrived <- m.Attributes["hop"]:
		default:
		}
		return nil
	}))
	defer second.Close()
	first := httptest.NewServer(pushHandler(func(m cloudevent.Message) error {
		_, err := s.PubSub.PublishRaw(ctx, b, m.Data, m.Attributes)
		return err
	}))
	defer first.Close()
	for _, hop := range []struct{ topic, target string }{{a, first.URL}, {b, second.URL}} {
		if err := s.hopSubscription(ctx, hop.topic, hop.target); err != nil {
			return nil, err
		}
	}
	out := make([]TwoHops, 0, n)
	for i := range n {
		time.Sleep(PauseBefore(i))
		id := fmt.Sprint(i)
		start := time.Now()
		if _, err := s.PubSub.PublishRaw(ctx, a, []byte("{}"), map[string]string{"hop": id}); err != nil {
			return out, err
		}
		for got := ""; got != id; {
			select {
			case got = <-arrived:
			case <-time.After(30 * time.Second):
				return out, fmt.Errorf("localstack.HopFloor: message %s not through two hops in 30 s", id)
			case <-ctx.Done():
				return out, ctx.Err()
			}
		}
		out = append(out, s.TwoHops(start, time.Now(), a, b))
	}
	return out, nil
}

// TwoHops is a message's time from start to end through the pushes to
// first and then to second, the only message on its way: the emulator's
// waits are those of the first push to first and the last to second
// within the span.
func (s *Stack) TwoHops(start, end time.Time, first, second string) TwoHops {
	h := TwoHops{Total: end.Sub(start)}
	if w := s.PushWaits(first, start, end); len(w) > 0 {
		h.EmulatorWait += w[0].Wait
	}
	if w := s.PushWaits(second, start, end); len(w) > 0 {
		h.EmulatorWait += w[len(w)-1].Wait
	}
	return h
}

// hopSubscription creates topic and its subscription delivering to target
// through a redeliverer, with the topology's delivery settings.
func (s *Stack) hopSubscription(ctx context.Context, topic, target string) error {
	top := s.delivery
	r := newRedeliverer(topic, target, top, s.PubSub, io.Discard, &s.waits)
	if err := r.listen(); err != nil {
		return err
	}
	s.redeliverers = append(s.redeliverers, r)
	c := s.PubSub.Raw()
	name := fmt.Sprintf("projects/%s/topics/%s", s.Project, topic)
	if _, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: name}); err != nil {
		return fmt.Errorf("localstack.HopFloor: %w", err)
	}
	_, err := c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: fmt.Sprintf("projects/%s/subscriptions/%s", s.Project, topic), Topic: name,
		PushConfig: &pubsubpb.PushConfig{PushEndpoint: r.url}, AckDeadlineSeconds: top.AckDeadlineSeconds,
	})
	if err != nil {
		return fmt.Errorf("localstack.HopFloor: %w", err)
	}
	return nil
}

// pushHandler decodes a push body and answers 204, or 500 if handle fails.
func pushHandler(handle func(cloudevent.Message) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Message cloudevent.Message `json:"message"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := handle(body.Message); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
