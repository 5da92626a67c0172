package pubsub_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/runtime/cloudevent"
)

// client is a Client on pstest's in-process Pub/Sub, with topic created.
func client(t *testing.T, topic string) (*pubsub.Client, *pstest.Server) {
	t.Helper()
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr)
	c, err := pubsub.NewClient(context.Background(), "proj")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Raw().TopicAdminClient.CreateTopic(context.Background(), &pubsubpb.Topic{Name: "projects/proj/topics/" + topic}); err != nil {
		t.Fatal(err)
	}
	return c, srv
}

func newEvent(t *testing.T, id string) event.Event {
	t.Helper()
	e, err := cloudevent.New(context.Background(), id, "//test", "test.type.v1", "sub-"+id, map[string]string{"id": id})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Concurrent single-event publishes (grouped into fewer requests) each
// arrive once, intact, as CloudEvents in binary mode.
func TestConcurrentPublishesArriveOnceEachIntact(t *testing.T) {
	c, srv := client(t, "events")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.Publish(context.Background(), "events", newEvent(t, fmt.Sprint("e", i)))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]int{}
	for _, m := range srv.Messages() {
		e, err := cloudevent.FromMessage(cloudevent.Message{Data: m.Data, Attributes: m.Attributes, MessageID: m.ID}, "events")
		if err != nil {
			t.Fatal(err)
		}
		var data map[string]string
		if err := e.DataAs(&data); err != nil || data["id"] != e.ID() || e.Subject() != "sub-"+e.ID() {
			t.Errorf("message %s: event %s, data %v (%v)", m.ID, e, data, err)
		}
		seen[e.ID()]++
	}
	if len(seen) != 64 {
		t.Fatalf("%d distinct events arrived, want 64", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s arrived %d times", id, n)
		}
	}
}

// A publish to a topic that does not exist fails: the caller answers an
// error (the webhook a 5xx) rather than believe it was sent.
func TestPublishToAMissingTopicFails(t *testing.T) {
	c, _ := client(t, "events")
	if err := c.Publish(context.Background(), "no-such-topic", newEvent(t, "x")); err == nil {
		t.Fatal("publish to a missing topic succeeded")
	}
}
