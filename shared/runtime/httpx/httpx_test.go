package httpx

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fulfillment/shared/testsupport/connrounds"
)

// server answers the statuses in order (then 200) and records the bodies and times.
type server struct {
	mu       sync.Mutex
	statuses []int
	bodies   []string
	times    []time.Time
	header   http.Header
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bodies = append(s.bodies, string(b))
	s.times = append(s.times, time.Now())
	status := http.StatusOK
	if len(s.statuses) > 0 {
		status, s.statuses = s.statuses[0], s.statuses[1:]
	}
	for k, v := range s.header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
}

func (s *server) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

func start(t *testing.T, s *server) string {
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL
}

func post(t *testing.T, c *http.Client, url string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"k":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	return resp, err
}

func fast(name string) Options {
	return Options{Name: name, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, MaxAttempts: 4}
}

func TestRetriesRetryableAnswersWithTheSameBody(t *testing.T) {
	s := &server{statuses: []int{503, 500, 408}}
	resp, err := post(t, NewClient(fast("dep")), start(t, s))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("resp %v err %v", resp, err)
	}
	if s.calls() != 4 {
		t.Fatalf("calls = %d, want 4", s.calls())
	}
	for _, b := range s.bodies {
		if b != `{"k":1}` {
			t.Fatalf("retried body %q", b)
		}
	}
}

func TestDoesNotRetryPermanentAnswers(t *testing.T) {
	s := &server{statuses: []int{400}}
	resp, err := post(t, NewClient(fast("dep")), start(t, s))
	if err != nil || resp.StatusCode != 400 || s.calls() != 1 {
		t.Fatalf("status %v err %v calls %d", resp, err, s.calls())
	}
}

func TestGivesUpAfterMaxAttemptsWithTheLastAnswer(t *testing.T) {
	s := &server{statuses: []int{503, 503, 503, 503, 503}}
	resp, err := post(t, NewClient(fast("dep")), start(t, s))
	if err != nil || resp.StatusCode != 503 || s.calls() != 4 {
		t.Fatalf("status %v err %v calls %d", resp, err, s.calls())
	}
}

func TestHonoursRetryAfter(t *testing.T) {
	s := &server{statuses: []int{429}, header: http.Header{"Retry-After": {"1"}}}
	resp, err := post(t, NewClient(fast("dep")), start(t, s))
	if err != nil || resp.StatusCode != 200 || s.calls() != 2 {
		t.Fatalf("status %v err %v calls %d", resp, err, s.calls())
	}
	if gap := s.times[1].Sub(s.times[0]); gap < time.Second {
		t.Fatalf("retried after %s, Retry-After asked 1s", gap)
	}
}

func TestLeavesALongRetryAfterToTheCaller(t *testing.T) {
	s := &server{statuses: []int{429}, header: http.Header{"Retry-After": {"120"}}}
	resp, err := post(t, NewClient(fast("dep")), start(t, s))
	if err != nil || resp.StatusCode != 429 || s.calls() != 1 {
		t.Fatalf("status %v err %v calls %d", resp, err, s.calls())
	}
}

func TestBreakerOpensAndFailsFastThenRecovers(t *testing.T) {
	s := &server{statuses: []int{503, 503, 503, 503, 503, 503}}
	o := fast("gitlab")
	o.MaxAttempts, o.BreakerFailures, o.BreakerOpen = 1, 3, 200*time.Millisecond
	c := NewClient(o)
	url := start(t, s)
	for range 3 {
		if resp, err := post(t, c, url); err != nil || resp.StatusCode != 503 {
			t.Fatalf("status %v err %v", resp, err)
		}
	}
	_, err := post(t, c, url)
	if !errors.Is(err, ErrOpen) {
		t.Fatalf("err = %v, want the breaker open", err)
	}
	if s.calls() != 3 {
		t.Fatalf("an open breaker let a call through: %d calls", s.calls())
	}
	s.mu.Lock()
	s.statuses = nil
	s.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := post(t, c, url)
		if err == nil && resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("breaker never closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRateLimitsDoNotOpenTheBreaker(t *testing.T) {
	s := &server{statuses: []int{429, 429, 429, 429, 429}}
	o := fast("sf")
	o.MaxAttempts, o.BreakerFailures = 1, 2
	tr := NewTransport(o)
	c := &http.Client{Transport: tr}
	url := start(t, s)
	for range 5 {
		if resp, err := post(t, c, url); err != nil || resp.StatusCode != 429 {
			t.Fatalf("status %v err %v", resp, err)
		}
	}
	if tr.State() != "closed" {
		t.Fatalf("breaker %s after rate limits", tr.State())
	}
}

func TestRetryAfterParsesSecondsAndDates(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if d, ok := RetryAfter("3", now); !ok || d != 3*time.Second {
		t.Fatal(d, ok)
	}
	if d, ok := RetryAfter(now.Add(7*time.Second).Format(http.TimeFormat), now); !ok || d != 7*time.Second {
		t.Fatal(d, ok)
	}
	if _, ok := RetryAfter("soon", now); ok {
		t.Fatal("accepted garbage")
	}
}

// countingTransport stands for a wrapper such as telemetry.Transport.
type countingTransport struct {
	base http.RoundTripper
	n    atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

func TestHungAttemptIsRetriedThroughAWrappingTransport(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if calls.Add(1) == 1 { // the first attempt hangs until the client gives up on it
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)

	wrap := &countingTransport{}
	o := fast("dep")
	o.AttemptTimeout, o.CallTimeout = 200*time.Millisecond, 5*time.Second
	o.Wrap = func(base http.RoundTripper) http.RoundTripper { wrap.base = base; return wrap }
	begin := time.Now()
	resp, err := post(t, NewClient(o), srv.URL)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("resp %v err %v, want the retry's 200", resp, err)
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("call took %s: the hung attempt was not cut at the attempt timeout", took)
	}
	if calls.Load() != 2 || wrap.n.Load() != 2 {
		t.Errorf("server calls %d, wrapped attempts %d; want 2 and 2", calls.Load(), wrap.n.Load())
	}
}

// Calls to one dependency at once keep their connections: the next calls
// at the same concurrency dial none.
func TestConcurrentCallsKeepTheirConnections(t *testing.T) {
	c := NewClient(Options{Name: "dep"})
	srv := connrounds.Start(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) })
	dialed := srv.Dialed(t, 8, 5, func() error {
		resp, err := post(t, c, srv.URL)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("answered %d", resp.StatusCode)
		}
		return err
	})
	if dialed != 8 {
		t.Errorf("5 rounds of 8 calls at once dialed %d connections, want 8 (one per call at once)", dialed)
	}
}
