// Package httpx makes the HTTP clients for outside systems (GitLab,
// Salesforce, Slack, PagerDuty) resilient in one place: a timeout per
// attempt and per call, retries with jittered exponential backoff for the
// answers a retry can fix (network errors, 5xx, 408, 429, honouring
// Retry-After), and a circuit breaker per dependency (sony/gobreaker) so a
// dependency that is down is not hammered: calls fail fast while it is open
// and the delivery goes back to Pub/Sub, which retries with its own backoff.
//
// Retrying is safe because every call we make carries an idempotency key
// (GitLab purchase_xid, Salesforce upsert by external id, PagerDuty
// dedup_key). Stripe charges are not sent through here.
package httpx

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/sony/gobreaker/v2"

	"fulfillment/shared/runtime/failure"
)

// keptConns is how many idle connections a client keeps to its dependency.
// http.DefaultTransport keeps 2 per host, so with more calls at once than
// that every call beyond the second dialed (and, against a real
// dependency, shook hands over TLS) a connection that was closed after it;
// an instance serves up to 80 requests at once (Cloud Run's default).
const keptConns = 80

// KeepingTransport is a clone of http.DefaultTransport that keeps keptConns (80)
// idle connections per host.
func KeepingTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = keptConns
	return t
}

// ErrOpen is returned, wrapped, while a dependency's breaker is open.
var ErrOpen = gobreaker.ErrOpenState

// Options tune a client; zero values take the defaults.
type Options struct {
	Name            string        // the dependency, in errors and logs
	AttemptTimeout  time.Duration // until response headers, per attempt (default 10 s)
	CallTimeout     time.Duration // the whole call, retries included (default 12 s)
	MaxAttempts     int           // default 3
	BaseDelay       time.Duration // first backoff (default 100 ms), doubling
	MaxDelay        time.Duration // backoff cap (default 2 s)
	MaxRetryAfter   time.Duration // a longer Retry-After is left to Pub/Sub (default 5 s)
	BreakerFailures uint32        // consecutive failures that open the breaker (default 5)
	BreakerOpen     time.Duration // how long it stays open before a probe (default 5 s)
	Logger          *slog.Logger  // breaker state changes; nil: not logged
	// Base sends one attempt. nil (the norm): a clone of
	// http.DefaultTransport whose ResponseHeaderTimeout is AttemptTimeout,
	// keeping 80 idle connections to the dependency. A
	// Base given here must bound its attempts itself.
	Base http.RoundTripper
	// Wrap, when set, wraps Base (e.g. telemetry.Transport, to trace each
	// attempt) without losing the per-attempt timeout of the default Base.
	Wrap func(http.RoundTripper) http.RoundTripper
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.AttemptTimeout, 10*time.Second)
	def(&o.CallTimeout, 12*time.Second)
	def(&o.BaseDelay, 100*time.Millisecond)
	def(&o.MaxDelay, 2*time.Second)
	def(&o.MaxRetryAfter, 5*time.Second)
	def(&o.BreakerOpen, 5*time.Second)
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.BreakerFailures == 0 {
		o.BreakerFailures = 5
	}
	if o.Base == nil {
		t := KeepingTransport()
		t.ResponseHeaderTimeout = o.AttemptTimeout
		o.Base = t
	}
	if o.Wrap != nil {
		o.Base = o.Wrap(o.Base)
		o.Wrap = nil // applied once, however often defaults runs
	}
}

// NewClient returns an http.Client for one dependency.
func NewClient(o Options) *http.Client {
	t := NewTransport(o)
	return &http.Client{Transport: t, Timeout: t.o.CallTimeout}
}

// Transport retries and guards one dependency.
type Transport struct {
	o       Options
	breaker *gobreaker.CircuitBreaker[*http.Response]
}

// NewTransport returns the retrying, breaker-guarded RoundTripper.
func NewTransport(o Options) *Transport {
	o.defaults()
	st := gobreaker.Settings{
		Name:    o.Name,
		Timeout: o.BreakerOpen,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= o.BreakerFailures
		},
		// A rate limit says the dependency is up: it must not open the breaker.
		IsExcluded: func(err error) bool {
			var s *statusError
			return errors.As(err, &s) && s.resp.StatusCode == http.StatusTooManyRequests
		},
	}
	if o.Logger != nil {
		st.OnStateChange = func(name string, from, to gobreaker.State) {
			o.Logger.Warn("circuit breaker changed state", "dependency", name, "from", from.String(), "to", to.String())
		}
	}
	return &Transport{o: o, breaker: gobreaker.NewCircuitBreaker[*http.Response](st)}
}

// State is the breaker's state: "closed", "half-open" or "open".
func (t *Transport) State() string { return t.breaker.State().String() }

// statusError carries a retryable answer through the breaker as a failure.
type statusError struct{ resp *http.Response }

func (e *statusError) Error() string { return fmt.Sprintf("answered %d", e.resp.StatusCode) }

// RoundTrip sends req, retrying what a retry can fix. The last retryable
// answer is returned as is, for the caller to classify.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		if attempt > 1 && req.Body != nil {
			if req.GetBody == nil {
				return nil, errors.New("httpx: cannot retry a request without GetBody")
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
		resp, err := t.breaker.Execute(func() (*http.Response, error) {
			resp, err := t.o.Base.RoundTrip(req)
			if err == nil && failure.RetryableStatus(resp.StatusCode) {
				return resp, &statusError{resp: resp}
			}
			return resp, err
		})
		var se *statusError
		switch {
		case errors.As(err, &se):
			resp, err = se.resp, nil
		case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
			return nil, fmt.Errorf("httpx: %s: %w", t.o.Name, err)
		}
		if !retryable(req, resp, err) || attempt >= t.o.MaxAttempts {
			return resp, err
		}
		wait, ok := t.delay(attempt, resp)
		if !ok {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
		}
		timer := time.NewTimer(wait)
		select {
		case <-req.Context().Done():
			timer.Stop()
			return nil, req.Context().Err()
		case <-timer.C:
		}
	}
}

// retryable: transport errors (unless the caller gave up) and the statuses
// failure.RetryableStatus names.
func retryable(req *http.Request, resp *http.Response, err error) bool {
	if err != nil {
		return req.Context().Err() == nil
	}
	return failure.RetryableStatus(resp.StatusCode)
}

// delay is the wait before the next attempt: the server's Retry-After when it
// gave one (ok is false when that is longer than we wait in-line), else full
// jitter over an exponential backoff.
func (t *Transport) delay(attempt int, resp *http.Response) (time.Duration, bool) {
	if resp != nil {
		if ra, ok := RetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			if ra > t.o.MaxRetryAfter {
				return 0, false
			}
			return ra + rand.N(t.o.BaseDelay), true
		}
	}
	ceiling := min(t.o.MaxDelay, t.o.BaseDelay<<(attempt-1))
	return rand.N(ceiling) + 1, true
}

// RetryAfter parses a Retry-After value: delay seconds or an HTTP date.
func RetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}
