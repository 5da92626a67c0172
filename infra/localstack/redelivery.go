package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"fulfillment/infra/topology"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/httpx"
)

// redeliverer plays Pub/Sub's retry policy in front of a push endpoint.
//
// The Pub/Sub emulator drops nacked messages under load: measured here, of
// 300 messages pushed at once to an endpoint answering 500 twice and then
// 204, 246 were never delivered a third time (nor dead-lettered). So the
// local stack acknowledges each push at once and delivers it to the function
// itself, as Pub/Sub does in production: a non-2xx answer is retried with
// exponential backoff and jitter between the topology's minimum and maximum,
// each push carrying its deliveryAttempt; after max_delivery_attempts the
// message goes to the function's dead-letter topic.
type redeliverer struct {
	fn     string
	target string // the function's own address, past its front door
	policy topology.Delivery
	pub    func(ctx context.Context, topic string, data []byte, attrs map[string]string) error
	logs   io.Writer
	hc     *http.Client
	queue  chan push
	stop   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	srv    *http.Server
	url    string
	waits  *pushWaits
}

type push struct {
	body    map[string]any
	attempt int
}

// workers is how many pushes a function gets at once (the emulator pushes
// with a few loops per subscription; Cloud Run instances serve 80).
const workers = 16

func newRedeliverer(fn, target string, policy topology.Delivery, pub *pubsub.Client, logs io.Writer, waits *pushWaits) *redeliverer {
	r := &redeliverer{
		fn: fn, target: target, policy: policy, logs: logs, waits: waits,
		hc:    &http.Client{Timeout: time.Duration(policy.AckDeadlineSeconds) * time.Second, Transport: pushTransport()},
		queue: make(chan push, 4096), stop: make(chan struct{}),
		pub: func(ctx context.Context, topic string, data []byte, attrs map[string]string) error {
			_, err := pub.PublishRaw(ctx, topic, data, attrs)
			return err
		},
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	for range workers {
		r.wg.Add(1)
		go r.work()
	}
	return r
}

// pushTransport keeps a connection for every worker (Go's default keeps 2,
// and the other workers' pushes each dialed the function anew) and, as the
// front door does, waits while the function restarts, as Cloud Run's front
// end holds a request: the stand-in plays Pub/Sub's push and that front end
// in one hop. Through the front door it took two, the second an HTTP round
// trip in the stack's own process, on its two cores, for work that on GCP
// Google's front end does, off the instance's.
func pushTransport() *http.Transport {
	t := httpx.KeepingTransport()
	t.DialContext = dialWhileRestarting
	return t
}

// listen serves the emulator's pushes on a free port.
func (r *redeliverer) listen() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("localstack: redeliverer: %w", err)
	}
	r.url = "http://" + ln.Addr().String() + "/"
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return nil
}

// ServeHTTP takes a push from the emulator and acknowledges it.
func (r *redeliverer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(io.LimitReader(req.Body, 10<<20)).Decode(&body); err != nil {
		http.Error(w, "not a push body", http.StatusBadRequest)
		return
	}
	r.noteWait(body, time.Now())
	select {
	case r.queue <- push{body: body, attempt: 1}:
		w.WriteHeader(http.StatusNoContent)
	case <-r.stop:
		http.Error(w, "stopping", http.StatusServiceUnavailable)
	}
}

// noteWait keeps how long the emulator held the pushed message.
func (r *redeliverer) noteWait(body map[string]any, arrived time.Time) {
	msg, _ := body["message"].(map[string]any)
	s, _ := msg["publishTime"].(string)
	if published, err := time.Parse(time.RFC3339Nano, s); err == nil {
		r.waits.add(PushWait{Function: r.fn, Arrived: arrived, Wait: arrived.Sub(midMillisecond(published))})
	}
}

// midMillisecond reads a publish time given to the millisecond, as the
// emulator gives it ("…21.260Z", cut, not rounded), as the middle of that
// millisecond: read as its start, every wait came out up to 1 ms long, and
// the time a purchase's two hops spent outside their waits up to 2 ms short
// (below zero for the bare transport's floor).
func midMillisecond(t time.Time) time.Time {
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		return t // finer than a millisecond: as given
	}
	return t.Add(time.Millisecond / 2)
}

func (r *redeliverer) work() {
	defer r.wg.Done()
	for {
		select {
		case <-r.stop:
			return
		case p := <-r.queue:
			r.deliver(p)
		}
	}
}

func (r *redeliverer) deliver(p push) {
	p.body["deliveryAttempt"] = p.attempt
	b, _ := json.Marshal(p.body)
	req, _ := http.NewRequestWithContext(r.ctx, http.MethodPost, r.target, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.hc.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return
		}
	}
	if r.ctx.Err() != nil {
		return
	}
	if p.attempt >= int(r.policy.MaxDeliveryAttempts) {
		r.deadLetter(p)
		return
	}
	wait := r.backoff(p.attempt)
	p.attempt++
	time.AfterFunc(wait, func() {
		select {
		case r.queue <- p:
		case <-r.stop:
		}
	})
}

// backoff doubles from the minimum up to the maximum, with jitter.
func (r *redeliverer) backoff(attempt int) time.Duration {
	d := r.policy.MinimumBackoff << (attempt - 1)
	if d <= 0 || d > r.policy.MaximumBackoff {
		d = r.policy.MaximumBackoff
	}
	return d/2 + rand.N(d/2+1)
}

func (r *redeliverer) deadLetter(p push) {
	msg, _ := p.body["message"].(map[string]any)
	var m cloudevent.Message
	raw, _ := json.Marshal(msg)
	_ = json.Unmarshal(raw, &m)
	fmt.Fprintf(r.logs, "localstack: %s gave up after %d delivery attempts on message %s; dead-lettered\n", r.fn, p.attempt, m.MessageID)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.pub(ctx, topology.DeadLetterTopic(r.fn), m.Data, m.Attributes); err != nil {
		fmt.Fprintf(r.logs, "localstack: dead-letter publish for %s failed: %v\n", r.fn, err)
	}
}

// Close stops taking pushes and abandons pending ones (the stack is going).
func (r *redeliverer) Close() error {
	if r.srv != nil {
		_ = r.srv.Close()
	}
	r.cancel()
	close(r.stop)
	r.wg.Wait()
	return nil
}
