package entrypoint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/runtime/cloudevent"
)

var discard = slog.New(slog.DiscardHandler)

func newEvent(t *testing.T, id string) event.Event {
	t.Helper()
	e, err := cloudevent.New(context.Background(), id, "//test/source", "test.event.v1", "subj", map[string]string{"id": id})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func pushBody(e event.Event, messageID string) []byte {
	data, attrs := cloudevent.ToMessage(e)
	b, _ := json.Marshal(map[string]any{
		"message":      map[string]any{"data": data, "attributes": attrs, "messageId": messageID},
		"subscription": "projects/p/subscriptions/s",
	})
	return b
}

// binaryRequest is e as a binary-mode CloudEvents HTTP request (ce-* headers).
func binaryRequest(t *testing.T, url string, e event.Event) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(e.Data()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", e.ID())
	req.Header.Set("Ce-Source", e.Source())
	req.Header.Set("Ce-Type", e.Type())
	return req
}

// structuredRequest is e as a structured-mode CloudEvents HTTP request.
func structuredRequest(t *testing.T, url string, e event.Event) *http.Request {
	t.Helper()
	body, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	return req
}

// seen counts the events a handler received, by id.
type seen struct {
	mu  sync.Mutex
	ids map[string]int
	got map[string]event.Event
}

func (s *seen) fn(_ context.Context, e event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids[e.ID()]++
	s.got[e.ID()] = e
	return nil
}

func newSeen() *seen { return &seen{ids: map[string]int{}, got: map[string]event.Event{}} }

func TestConcurrentDeliveriesAreAllAnswered(t *testing.T) {
	t.Parallel()
	s := newSeen()
	var inFlight sync.WaitGroup
	srv := httptest.NewServer(CloudEventHandler(func(ctx context.Context, e event.Event) error {
		time.Sleep(time.Millisecond) // keep requests overlapping
		return s.fn(ctx, e)
	}, discard))
	defer srv.Close()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 300}}
	defer client.CloseIdleConnections()

	const pushes, binaries, structured = 200, 40, 10
	var reqs []*http.Request
	var want []string
	for i := range pushes {
		id := fmt.Sprintf("push-%d", i)
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(pushBody(newEvent(t, id), fmt.Sprint(i))))
		req.Header.Set("Content-Type", "application/json")
		reqs, want = append(reqs, req), append(want, id)
	}
	for i := range binaries {
		id := fmt.Sprintf("binary-%d", i)
		reqs, want = append(reqs, binaryRequest(t, srv.URL, newEvent(t, id))), append(want, id)
	}
	for i := range structured {
		id := fmt.Sprintf("structured-%d", i)
		reqs, want = append(reqs, structuredRequest(t, srv.URL, newEvent(t, id))), append(want, id)
	}

	start := make(chan struct{})
	errs := make(chan error, len(reqs))
	for _, req := range reqs {
		inFlight.Add(1)
		go func() {
			defer inFlight.Done()
			<-start
			resp, err := client.Do(req)
			if err != nil {
				errs <- fmt.Errorf("%s: %w", req.Header.Get("Ce-Id"), err)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				body, _ := io.ReadAll(resp.Body)
				errs <- fmt.Errorf("answered %d %s", resp.StatusCode, body)
			}
		}()
	}
	close(start)
	inFlight.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ids) != len(want) {
		t.Errorf("handler saw %d distinct events, want %d", len(s.ids), len(want))
	}
	for _, id := range want {
		if n := s.ids[id]; n != 1 {
			t.Errorf("event %s seen %d times, want 1", id, n)
		}
		if e, ok := s.got[id]; ok && (e.Type() != "test.event.v1" || e.Source() != "//test/source") {
			t.Errorf("event %s decoded as %s", id, e)
		}
	}
}

func TestDeliveryShapes(t *testing.T) {
	t.Parallel()
	s := newSeen()
	srv := httptest.NewServer(CloudEventHandler(s.fn, discard))
	defer srv.Close()
	e := newEvent(t, "shape-1")

	for _, c := range []struct {
		name string
		req  *http.Request
		id   string
	}{
		{"binary", binaryRequest(t, srv.URL, e), "shape-1"},
		{"structured", structuredRequest(t, srv.URL, newEvent(t, "shape-2")), "shape-2"},
	} {
		resp, err := http.DefaultClient.Do(c.req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("%s answered %d", c.name, resp.StatusCode)
		}
		s.mu.Lock()
		got := s.got[c.id]
		s.mu.Unlock()
		var data map[string]string
		if err := got.DataAs(&data); err != nil || data["id"] != c.id {
			t.Errorf("%s: data = %v, %v", c.name, data, err)
		}
	}
}

// A push's message id and delivery attempt reach the handler: the consumer
// counts a message's failed attempts by them.
func TestPushDeliveryReachesTheHandler(t *testing.T) {
	t.Parallel()
	got := make(chan cloudevent.Delivery, 1)
	srv := httptest.NewServer(CloudEventHandler(func(ctx context.Context, _ event.Event) error {
		got <- cloudevent.DeliveryOf(ctx)
		return nil
	}, discard))
	defer srv.Close()
	var body map[string]any
	if err := json.Unmarshal(pushBody(newEvent(t, "push-1"), "4471"), &body); err != nil {
		t.Fatal(err)
	}
	body["deliveryAttempt"] = 3
	b, _ := json.Marshal(body)
	resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("answered %d", resp.StatusCode)
	}
	if d := <-got; d != (cloudevent.Delivery{MessageID: "4471", Attempt: 3}) {
		t.Fatalf("handler saw delivery %+v, want message 4471, attempt 3", d)
	}
}

func TestPlainPushBecomesMessagePublished(t *testing.T) {
	t.Parallel()
	s := newSeen()
	srv := httptest.NewServer(CloudEventHandler(s.fn, discard))
	defer srv.Close()
	body := []byte(`{"message":{"data":"e30=","attributes":{"origin":"scheduler"},"messageId":"tick-77"},"subscription":"projects/p/subscriptions/s"}`)
	resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("answered %d", resp.StatusCode)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.got["tick-77"]
	if !ok || e.Type() != cloudevent.PubSubMessagePublished {
		t.Fatalf("handler saw %v", s.got)
	}
	m, err := cloudevent.PubSubMessage(e)
	if err != nil || string(m.Data) != "{}" || m.Attributes["origin"] != "scheduler" {
		t.Errorf("message = %+v, %v", m, err)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	failing := httptest.NewServer(CloudEventHandler(func(context.Context, event.Event) error {
		return errors.New("firestore unavailable")
	}, discard))
	defer failing.Close()
	s := newSeen()
	ok := httptest.NewServer(CloudEventHandler(s.fn, discard))
	defer ok.Close()

	cases := []struct {
		name   string
		url    string
		method string
		body   []byte
		header map[string]string
		status int
	}{
		{"neither push nor event", ok.URL, http.MethodPost, []byte(`{"hello":"world"}`), nil, http.StatusBadRequest},
		{"not JSON", ok.URL, http.MethodPost, []byte(`hello`), nil, http.StatusBadRequest},
		{"push without CloudEvent source", ok.URL, http.MethodPost,
			[]byte(`{"message":{"data":"e30=","attributes":{"ce-id":"x","ce-type":"t","ce-specversion":"1.0"},"messageId":"1"}}`), nil, http.StatusBadRequest},
		{"binary event with a bad spec version", ok.URL, http.MethodPost, []byte(`{}`),
			map[string]string{"Ce-Specversion": "9.9", "Ce-Id": "x", "Ce-Source": "//s", "Ce-Type": "t"}, http.StatusBadRequest},
		{"over the size cap", ok.URL, http.MethodPost, bytes.Repeat([]byte("a"), maxEventBytes+1), nil, http.StatusRequestEntityTooLarge},
		{"GET", ok.URL, http.MethodGet, nil, nil, http.StatusMethodNotAllowed},
		{"func error", failing.URL, http.MethodPost, pushBody(newEvent(t, "fails"), "1"), nil, http.StatusInternalServerError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, c.url, bytes.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("answered %d, want %d", resp.StatusCode, c.status)
			}
		})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ids) != 0 {
		t.Errorf("refused deliveries reached the handler: %v", s.ids)
	}
}

// eventFunc is an EventFunction recording its Close.
type eventFunc struct {
	seen   *seen
	closed bool
}

func (f *eventFunc) Handle(ctx context.Context, e event.Event) error { return f.seen.fn(ctx, e) }
func (f *eventFunc) Close() error                                    { f.closed = true; return nil }

func TestServeAdaptsAnEventFunction(t *testing.T) {
	t.Parallel()
	f := &eventFunc{seen: newSeen()}
	fn := Serve(f, discard)
	rr := httptest.NewRecorder()
	fn.ServeHTTP(rr, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(pushBody(newEvent(t, "served"), "1"))))
	if rr.Code != http.StatusNoContent || f.seen.ids["served"] != 1 {
		t.Fatalf("answered %d, seen %v", rr.Code, f.seen.ids)
	}
	if err := fn.Close(); err != nil || !f.closed {
		t.Errorf("Close = %v, closed %v", err, f.closed)
	}
}

func TestInvalidBinaryEventIsRefused(t *testing.T) {
	s := newSeen()
	srv := httptest.NewServer(CloudEventHandler(s.fn, discard))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader([]byte(`{}`)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", "no-type")
	req.Header.Set("Ce-Source", "//s")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || s.ids["no-type"] != 0 {
		t.Fatalf("answered %d and the func saw it %d times; want 400 and 0", resp.StatusCode, s.ids["no-type"])
	}
}

func TestGCPEntryPointAnswersHealthPaths(t *testing.T) {
	t.Parallel()
	h := withHealth(CloudEventHandler(newSeen().fn, discard))
	for path, want := range map[string]int{
		ReadinessPath: http.StatusOK,
		LivenessPath:  http.StatusOK,
		"/":           http.StatusMethodNotAllowed, // the function's own answer to a GET
	} {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, path, nil))
		if rr.Code != want {
			t.Errorf("GET %s answered %d, want %d", path, rr.Code, want)
		}
	}
}

// func-go serves while Start runs: until the function is set up, requests
// and readiness say "starting"; after, they reach it; Stop closes it.
func TestKnativeInstanceServesOnlyOnceStarted(t *testing.T) {
	f := &eventFunc{seen: newSeen()}
	release := make(chan struct{})
	k := &knativeInstance{name: "test", logger: discard, setup: func(context.Context, *slog.Logger, Hooks) (Function, error) {
		<-release
		return Serve(f, discard), nil
	}}
	started := make(chan error, 1)
	go func() { started <- k.Start(context.Background(), nil) }()

	post := func() int {
		rr := httptest.NewRecorder()
		k.Handle(rr, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(pushBody(newEvent(t, "knative-1"), "1"))))
		return rr.Code
	}
	if code := post(); code != http.StatusServiceUnavailable {
		t.Fatalf("before Start returned: answered %d, want 503", code)
	}
	if ready, _ := k.Ready(context.Background()); ready {
		t.Fatal("ready before Start returned")
	}
	// Requests racing the end of Start see the function whole or not at all
	// (go test -race checks the hand-over).
	var racing sync.WaitGroup
	for range 4 {
		racing.Go(func() {
			if code := post(); code != http.StatusServiceUnavailable && code != http.StatusNoContent {
				t.Errorf("during Start: answered %d", code)
			}
		})
	}
	close(release)
	racing.Wait()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if ready, _ := k.Ready(context.Background()); !ready {
		t.Fatal("not ready after Start")
	}
	if code := post(); code != http.StatusNoContent {
		t.Fatalf("after Start: answered %d, want 204", code)
	}
	if err := k.Stop(context.Background()); err != nil || !f.closed {
		t.Fatalf("Stop: %v, function closed %v", err, f.closed)
	}
}

// After SIGTERM the GCP entry point waits for the requests in flight, up
// to a limit, before the function closes its clients.
func TestInFlightRequestsDrain(t *testing.T) {
	t.Parallel()
	var requests inFlight
	release := make(chan struct{})
	h := requests.count(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.WriteHeader(http.StatusNoContent)
	}))
	answered := make(chan int)
	go func() {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, httptest.NewRequest(http.MethodPost, "/", nil))
		answered <- rr.Code
	}()
	for requests.n.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if n := requests.drain(20 * time.Millisecond); n != 1 {
		t.Fatalf("drain with a request held = %d in flight, want 1", n)
	}
	drained := make(chan int64)
	go func() { drained <- requests.drain(10 * time.Second) }()
	select {
	case n := <-drained:
		t.Fatalf("drain returned (%d) while a request was in flight", n)
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	if code := <-answered; code != http.StatusNoContent {
		t.Fatalf("the request in flight answered %d", code)
	}
	if n := <-drained; n != 0 {
		t.Fatalf("drain = %d after the request finished", n)
	}
}
