package cloudevent

import (
	"bytes"
	"context"
	"encoding/json"
	"fulfillment/shared/runtime/logging"
	"regexp"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/runtime/failure"
)

const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func mustNew(t *testing.T, ctx context.Context, id string) event.Event {
	t.Helper()
	e, err := New(ctx, id, "//fulfillment/test", "fulfillment.test.v1", "sub-1", map[string]any{"n": 1, "s": "x"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestNewCarriesTheTraceParent(t *testing.T) {
	t.Parallel()
	with := mustNew(t, logging.WithTrace(context.Background(), tp), "a")
	if got := TraceParentOf(with); got != tp {
		t.Errorf("traceparent = %q, want %q", got, tp)
	}
	if without := mustNew(t, context.Background(), "b"); TraceParentOf(without) != "" {
		t.Errorf("traceparent set without one in the context: %q", TraceParentOf(without))
	}
	if logging.TraceParent(context.Background()) != "" {
		t.Error("TraceParent of an empty context is not empty")
	}
}

func TestNewRefusesAnInvalidEvent(t *testing.T) {
	t.Parallel()
	if _, err := New(context.Background(), "", "//s", "t", "", nil); err == nil {
		t.Error("New accepted an empty id")
	}
	if _, err := New(context.Background(), "id", "//s", "t", "", func() {}); err == nil {
		t.Error("New accepted data that cannot be encoded")
	}
}

func TestMessageRoundTrip(t *testing.T) {
	t.Parallel()
	in := mustNew(t, logging.WithTrace(context.Background(), tp), "evt-1")
	in.SetExtension("partitionkey", "sub-1")
	data, attrs := ToMessage(in)

	want := map[string]string{
		"ce-specversion": "1.0", "ce-id": "evt-1", "ce-source": "//fulfillment/test", "ce-type": "fulfillment.test.v1",
		"ce-subject": "sub-1", "content-type": event.ApplicationJSON, "ce-traceparent": tp, "ce-partitionkey": "sub-1",
	}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, attrs[k], v)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, attrs["ce-time"]); err != nil {
		t.Errorf("ce-time %q: %v", attrs["ce-time"], err)
	}

	out, err := FromMessage(Message{Data: data, Attributes: attrs, MessageID: "m-1"}, "projects/p/topics/t")
	if err != nil {
		t.Fatal(err)
	}
	if out.ID() != in.ID() || out.Source() != in.Source() || out.Type() != in.Type() || out.Subject() != in.Subject() ||
		out.DataContentType() != in.DataContentType() || !out.Time().Equal(in.Time()) || !bytes.Equal(out.Data(), in.Data()) {
		t.Errorf("round trip:\n in  %s\n out %s", in, out)
	}
	if TraceParentOf(out) != tp || out.Extensions()["partitionkey"] != "sub-1" {
		t.Errorf("extensions = %v", out.Extensions())
	}
	if Key(out) != Key(in) {
		t.Error("the key changed in the round trip")
	}
}

func TestFromMessageRefusals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		attrs map[string]string
		ok    bool
	}{
		{"bad time", map[string]string{"ce-id": "1", "ce-source": "//s", "ce-type": "t", "ce-time": "yesterday"}, false},
		{"no source", map[string]string{"ce-id": "1", "ce-type": "t"}, false},
		{"no type", map[string]string{"ce-id": "1", "ce-source": "//s"}, false},
		{"empty subject is allowed", map[string]string{"ce-id": "1", "ce-source": "//s", "ce-type": "t", "ce-subject": ""}, true},
	}
	for _, c := range cases {
		_, err := FromMessage(Message{Data: []byte("{}"), Attributes: c.attrs, MessageID: "m"}, "projects/p/topics/t")
		switch {
		case c.ok && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case !c.ok && !failure.IsPermanent(err):
			t.Errorf("%s: err = %v, want a permanent error", c.name, err)
		}
	}
}

func TestPlainMessageBecomesMessagePublished(t *testing.T) {
	t.Parallel()
	published := time.Date(2026, 3, 10, 6, 0, 0, 0, time.UTC)
	m := Message{Data: []byte(`{"job":"renewal"}`), Attributes: map[string]string{"origin": "scheduler"}, MessageID: "9876", PublishTime: published}
	e, err := FromMessage(m, "projects/p/topics/renewal-ticks")
	if err != nil {
		t.Fatal(err)
	}
	if e.ID() != "9876" || e.Type() != PubSubMessagePublished || e.Source() != "//pubsub.googleapis.com/projects/p/topics/renewal-ticks" || !e.Time().Equal(published) {
		t.Fatalf("event = %s", e)
	}
	got, err := PubSubMessage(e)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data) != `{"job":"renewal"}` || got.Attributes["origin"] != "scheduler" || got.MessageID != "9876" {
		t.Errorf("message = %+v", got)
	}
	// Unwrap keeps a plain message as it is.
	if u, err := Unwrap(e); err != nil || u.ID() != "9876" || u.Type() != PubSubMessagePublished {
		t.Errorf("Unwrap = %s, %v", u, err)
	}
	// Two deliveries of the same message dedupe to the same key.
	again, _ := FromMessage(m, "projects/p/topics/renewal-ticks")
	if Key(again) != Key(e) {
		t.Error("the same message gave two keys")
	}
}

// messagePublished builds the event Eventarc or functions-framework delivers
// for a Pub/Sub message.
func messagePublished(t *testing.T, id string, m Message) event.Event {
	t.Helper()
	e := event.New()
	e.SetID(id)
	e.SetSource("//pubsub.googleapis.com/projects/p/topics/subscription-events")
	e.SetType(PubSubMessagePublished)
	if err := e.SetData(event.ApplicationJSON, map[string]any{"message": m, "subscription": "projects/p/subscriptions/s"}); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestUnwrapOpensTheCarriedEvent(t *testing.T) {
	t.Parallel()
	in := mustNew(t, logging.WithTrace(context.Background(), tp), "inner-1")
	data, attrs := ToMessage(in)
	outer := messagePublished(t, "msg-1", Message{Data: data, Attributes: attrs, MessageID: "msg-1"})

	got, err := Unwrap(outer)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != "inner-1" || got.Type() != in.Type() || got.Source() != in.Source() || TraceParentOf(got) != tp || !bytes.Equal(got.Data(), in.Data()) {
		t.Errorf("unwrapped %s", got)
	}
	// Any other event passes through.
	if same, err := Unwrap(in); err != nil || same.ID() != in.ID() {
		t.Errorf("Unwrap of a plain event = %s, %v", same, err)
	}
}

func TestUnwrapWithoutAMessageIsPermanent(t *testing.T) {
	t.Parallel()
	e := event.New()
	e.SetID("x")
	e.SetSource("//pubsub.googleapis.com/projects/p/topics/t")
	e.SetType(PubSubMessagePublished)
	_ = e.SetData(event.ApplicationJSON, map[string]string{"no": "message"})
	if _, err := Unwrap(e); !failure.IsPermanent(err) {
		t.Errorf("err = %v, want permanent", err)
	}
}

func TestPubSubMessageTakesTheEventIDWhenMissing(t *testing.T) {
	t.Parallel()
	e := messagePublished(t, "ev-42", Message{Data: []byte("x")})
	m, err := PubSubMessage(e)
	if err != nil || m.MessageID != "ev-42" {
		t.Errorf("message = %+v, %v", m, err)
	}
}

func TestParsePush(t *testing.T) {
	t.Parallel()
	in := mustNew(t, context.Background(), "pushed")
	data, attrs := ToMessage(in)
	body, _ := json.Marshal(map[string]any{
		"message":      map[string]any{"data": data, "attributes": attrs, "messageId": "1"},
		"subscription": "projects/p/subscriptions/s",
	})
	got, err := ParsePush(body)
	if err != nil || got.ID() != "pushed" || !bytes.Equal(got.Data(), in.Data()) {
		t.Fatalf("ParsePush = %s, %v", got, err)
	}
	for _, bad := range []string{`{}`, `[]`, `nope`, `{"subscription":"s"}`} {
		if _, err := ParsePush([]byte(bad)); !failure.IsPermanent(err) {
			t.Errorf("ParsePush(%s) err = %v, want permanent", bad, err)
		}
	}
}

func TestDerivedID(t *testing.T) {
	t.Parallel()
	in := mustNew(t, context.Background(), "evt-1")
	a, b := DerivedID(in, "activated"), DerivedID(in, "activated")
	if a != b {
		t.Fatalf("DerivedID not deterministic: %s vs %s", a, b)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(a) {
		t.Errorf("DerivedID %q is not 32 hex characters", a)
	}
	// A copy of the same input (a redelivery) gives the same id.
	redelivered := mustNew(t, context.Background(), "evt-1")
	if DerivedID(redelivered, "activated") != a {
		t.Error("a redelivery derived another id")
	}
	otherSource := in.Clone()
	otherSource.SetSource("//elsewhere")
	distinct := map[string]string{
		"purpose":      DerivedID(in, "payment_failed"),
		"input id":     DerivedID(mustNew(t, context.Background(), "evt-2"), "activated"),
		"input source": DerivedID(otherSource, "activated"),
	}
	for what, id := range distinct {
		if id == a {
			t.Errorf("another %s gave the same id", what)
		}
	}
	// The separator keeps ("ab","c") apart from ("a","bc").
	x, y := in.Clone(), in.Clone()
	x.SetID("ab")
	y.SetID("a")
	if DerivedID(x, "c") == DerivedID(y, "bc") {
		t.Error("ambiguous concatenation")
	}
}

func TestDecodeData(t *testing.T) {
	t.Parallel()
	in := mustNew(t, context.Background(), "d")
	var ok struct{ N int }
	if err := DecodeData(in, &ok); err != nil || ok.N != 1 {
		t.Errorf("DecodeData = %+v, %v", ok, err)
	}
	var wrong []int
	if err := DecodeData(in, &wrong); !failure.IsPermanent(err) {
		t.Errorf("err = %v, want permanent", err)
	}
}
