// Package testdouble holds recording HTTP doubles of the outside systems
// (GitLab, Salesforce, Slack, PagerDuty, Stripe). They speak the real wire
// formats and run on real listeners so the same doubles serve unit tests and
// the local stack; GET /_calls lets another process read what they received.
package testdouble

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// CallsPath serves the recorded calls as JSON (GET) and clears them (DELETE).
const CallsPath = "/_calls"

// maxBody bounds what a double reads from one request.
const maxBody = 1 << 20

// Call is one request a double received.
type Call struct {
	Time    time.Time         `json:"time"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Query   string            `json:"query,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	// Body is the decoded JSON object or form; nil when the body was neither.
	Body map[string]any `json:"body,omitempty"`
	Raw  string         `json:"raw,omitempty"`
	// Status is what the double answered.
	Status int `json:"status"`
	// Replayed is set when the Stripe proxy answered from its idempotency store.
	Replayed bool `json:"replayed,omitempty"`
}

// Server is the part every double shares: the listener, the call log, the
// fault queue and the /_calls endpoint.
type Server struct {
	ln      net.Listener
	srv     *http.Server
	headers []string                // request headers worth recording
	fault   func(status int) []byte // body of an injected failure
	onReset func()                  // clears a double's own state
	mu      sync.Mutex
	calls   []Call
	faults  []int // statuses for the next calls, in order
	windows []*faultWindow
	delays  []time.Duration // how long the next calls take, in order
}

// faultWindow fails every nth call with status until a time.
type faultWindow struct {
	from, until time.Time
	status      int
	every, seen int
}

// options configure the shared Server for one double.
type options struct {
	headers     []string
	faultBody   func(status int) []byte
	contentType string
	onReset     func()
}

// start listens on addr ("127.0.0.1:0" picks a free port) and serves h
// behind the recording and fault-injection layer.
func start(addr string, h http.Handler, o options) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("testdouble.start: %w", err)
	}
	// Every double records the W3C trace header: a caller's trace must reach it.
	headers := append(append([]string(nil), o.headers...), "Traceparent")
	s := &Server{ln: ln, headers: headers, fault: o.faultBody, onReset: o.onReset}
	if s.fault == nil {
		s.fault = defaultFaultBody
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+CallsPath, s.serveCalls)
	mux.HandleFunc("DELETE "+CallsPath, func(w http.ResponseWriter, _ *http.Request) {
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("/", s.record(h, o.contentType))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }() // returns ErrServerClosed after Close
	return s, nil
}

// URL is the double's base URL, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops the listener and drops open connections.
func (s *Server) Close() error { return s.srv.Close() }

// Calls returns a snapshot of the calls received so far, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CallsFrom returns the calls received after the first from, oldest first:
// what a poller that has seen from of them has not, without copying them all.
func (s *Server) CallsFrom(from int) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	if from >= len(s.calls) {
		return nil
	}
	return append([]Call(nil), s.calls[max(from, 0):]...)
}

// Reset forgets recorded calls, pending faults and the double's own state.
func (s *Server) Reset() {
	s.mu.Lock()
	s.calls, s.faults, s.windows, s.delays = nil, nil, nil, nil
	s.mu.Unlock()
	if s.onReset != nil {
		s.onReset()
	}
}

// FailNext makes the next n calls answer status (e.g. 503, or 429 with
// Retry-After) without reaching the double's normal behaviour.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, status)
	}
}

// DelayNext makes the next n calls wait d before they are served, as a slow
// dependency does.
func (s *Server) DelayNext(n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.delays = append(s.delays, d)
	}
}

func (s *Server) takeDelay() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.delays) == 0 {
		return 0
	}
	d := s.delays[0]
	s.delays = s.delays[1:]
	return d
}

// FailWindow makes calls answer status from start for the duration d:
// every call when every is 1, every second one when 2 (half), and so on.
// Windows may overlap; 429 and 503 carry Retry-After: 1.
func (s *Server) FailWindow(start time.Time, d time.Duration, status, every int) {
	if every < 1 {
		every = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.windows = append(s.windows, &faultWindow{from: start, until: start.Add(d), status: status, every: every})
}

func (s *Server) takeFault() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) > 0 {
		status := s.faults[0]
		s.faults = s.faults[1:]
		return status, true
	}
	now := time.Now()
	for _, w := range s.windows {
		if now.Before(w.from) || !now.Before(w.until) {
			continue
		}
		w.seen++
		if w.seen%w.every == 0 {
			return w.status, true
		}
	}
	return 0, false
}

func (s *Server) add(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
}

func (s *Server) serveCalls(w http.ResponseWriter, _ *http.Request) {
	calls := s.Calls()
	if calls == nil {
		calls = []Call{} // "[]" rather than "null" for readers in other languages
	}
	writeJSON(w, http.StatusOK, calls)
}

// record buffers the body (so handlers can still read it), injects a queued
// fault if any, then logs the call with the status that was answered.
func (s *Server) record(h http.Handler, faultType string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
		r.Body = io.NopCloser(bytes.NewReader(raw))
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		if d := s.takeDelay(); d > 0 {
			time.Sleep(d)
		}
		if status, ok := s.takeFault(); ok {
			s.writeFault(sw, status, faultType)
		} else {
			h.ServeHTTP(sw, r)
		}
		s.add(s.newCall(r, raw, sw))
	})
}

func (s *Server) writeFault(w http.ResponseWriter, status int, contentType string) {
	if contentType == "" {
		contentType = "application/json"
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(s.fault(status)) // the client may have gone
}

func (s *Server) newCall(r *http.Request, raw []byte, sw *statusWriter) Call {
	c := Call{
		Time:     time.Now().UTC(),
		Method:   r.Method,
		Path:     r.URL.Path,
		Query:    r.URL.RawQuery,
		Body:     decodeBody(r.Header.Get("Content-Type"), raw),
		Raw:      string(raw),
		Status:   sw.status,
		Replayed: sw.Header().Get("Idempotent-Replayed") == "true",
	}
	for _, name := range s.headers {
		if v := r.Header.Get(name); v != "" {
			if c.Headers == nil {
				c.Headers = map[string]string{}
			}
			c.Headers[http.CanonicalHeaderKey(name)] = v
		}
	}
	return c
}

// decodeBody turns a form or JSON object body into a map for assertions.
func decodeBody(contentType string, raw []byte) map[string]any {
	if len(raw) == 0 {
		return nil
	}
	if strings.HasPrefix(contentType, "application/x-www-form-urlencoded") {
		return decodeForm(raw)
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// decodeForm keeps Stripe's bracketed keys flat ("metadata[order]"); a key
// sent twice becomes a []string.
func decodeForm(raw []byte) map[string]any {
	vals, err := url.ParseQuery(string(raw))
	if err != nil {
		return nil
	}
	m := make(map[string]any, len(vals))
	for k, v := range vals {
		if len(v) == 1 {
			m[k] = v[0]
		} else {
			m[k] = v
		}
	}
	return m
}

// FetchCalls reads the calls a double in another process has recorded.
func FetchCalls(ctx context.Context, hc *http.Client, baseURL string) ([]Call, error) {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(baseURL, "/")+CallsPath, nil)
	if err != nil {
		return nil, fmt.Errorf("testdouble.FetchCalls: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("testdouble.FetchCalls: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("testdouble.FetchCalls: %s answered %d", baseURL, resp.StatusCode)
	}
	var calls []Call
	if err := json.NewDecoder(resp.Body).Decode(&calls); err != nil {
		return nil, fmt.Errorf("testdouble.FetchCalls: %w", err)
	}
	return calls, nil
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may have gone
}

func defaultFaultBody(status int) []byte {
	b, _ := json.Marshal(map[string]string{"message": fmt.Sprintf("%d %s", status, http.StatusText(status))})
	return b
}

// decodeObject reads a JSON object body; it is how every JSON double
// rejects malformed requests.
func decodeObject(r *http.Request) (map[string]any, error) {
	var m map[string]any
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("body is not a JSON object")
	}
	return m, nil
}

// Answered counts calls by outcome: ok for a 2xx answer, failed otherwise.
func Answered(calls []Call) (ok, failed int) {
	for _, c := range calls {
		if c.Status/100 == 2 {
			ok++
		} else {
			failed++
		}
	}
	return ok, failed
}
