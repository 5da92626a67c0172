package testdouble

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// StripeProxy sits in front of stripe-mock, which is stateless, and adds
// the one Stripe behaviour fulfillment relies on: a POST repeated with the
// same Idempotency-Key gets the first response back, unexecuted.
type StripeProxy struct {
	*Server
	upstream *url.URL
	hc       *http.Client

	mu   sync.Mutex
	idem map[string]*stored // by Idempotency-Key
	// paid remembers invoices paid through the proxy: stripe-mock is
	// stateless, so a later status lookup is answered as Stripe would.
	paid map[string]bool
	// methods are the payment methods intents saved (SavePaymentMethod).
	methods map[string]string
	// promos are the active promotion codes (ActivatePromotionCode).
	promos map[string]string
	// slow holds the answers of requests whose path ends in slowSuffix for
	// slowFor, slowLeft more times: a Stripe that executes but answers too late.
	slowSuffix string
	slowFor    time.Duration
	slowLeft   int
	// lost holds requests whose path ends in lostSuffix, lostLeft more
	// times, until the client gives up, and never forwards them: a Stripe
	// that never got the call.
	lostSuffix string
	lostLeft   int
	// declineLeft is how many more new pay calls are declined with a card
	// error (402), as Stripe answers a card that does not pay.
	declineLeft int
}

// stored is the outcome of the first request made with an idempotency key.
type stored struct {
	request string // method, path and body, to catch a key reused for another request
	done    bool
	status  int
	header  http.Header
	body    []byte
}

// StartStripeProxy starts a recording proxy to upstreamURL (e.g. stripe-mock
// at http://127.0.0.1:12111).
func StartStripeProxy(addr, upstreamURL string) (*StripeProxy, error) {
	u, err := url.Parse(upstreamURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("testdouble.StartStripeProxy: bad upstream %q", upstreamURL)
	}
	p := &StripeProxy{upstream: u, hc: &http.Client{Timeout: 30 * time.Second}, idem: map[string]*stored{}, paid: map[string]bool{}}
	s, err := start(addr, http.HandlerFunc(p.serve), options{
		headers:   []string{"Idempotency-Key", "Stripe-Version", "Stripe-Account", "Content-Type"},
		onReset:   p.reset,
		faultBody: stripeFaultBody,
	})
	if err != nil {
		return nil, err
	}
	p.Server = s
	return p, nil
}

func (p *StripeProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idem = map[string]*stored{}
	p.paid = map[string]bool{}
	p.methods, p.promos = nil, nil
	p.slowLeft, p.lostLeft = 0, 0
}

// LoseRequests makes the next n requests whose path ends in pathSuffix go
// unanswered until the client gives up, without reaching stripe-mock.
func (p *StripeProxy) LoseRequests(pathSuffix string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lostSuffix, p.lostLeft = pathSuffix, n
}

// DeclinePayments makes the next n pay calls (with a new idempotency key)
// be declined as a card that does not pay: a 402 card_error, kept under
// the key like any answer, and the invoice left unpaid.
func (p *StripeProxy) DeclinePayments(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.declineLeft = n
}

func (p *StripeProxy) takeDecline(r *http.Request) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.declineLeft == 0 || r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/pay") {
		return false
	}
	p.declineLeft--
	return true
}

func (p *StripeProxy) takeLost(path string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lostLeft == 0 || !strings.HasSuffix(path, p.lostSuffix) {
		return false
	}
	p.lostLeft--
	return true
}

// SlowAnswers makes the next n requests whose path ends in pathSuffix (e.g.
// "/pay") run at stripe-mock as usual but answer only after d, so a client
// with a shorter timeout never learns the outcome.
func (p *StripeProxy) SlowAnswers(pathSuffix string, n int, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.slowSuffix, p.slowLeft, p.slowFor = pathSuffix, n, d
}

// takeSlow reports how long to hold the answer to a request on path.
func (p *StripeProxy) takeSlow(path string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.slowLeft == 0 || !strings.HasSuffix(path, p.slowSuffix) {
		return 0
	}
	p.slowLeft--
	return p.slowFor
}

// slowWriter holds the answer back until the delay passed or the client gave up.
type slowWriter struct {
	http.ResponseWriter
	r     *http.Request
	delay time.Duration
}

func (w *slowWriter) WriteHeader(code int) {
	select {
	case <-time.After(w.delay):
	case <-w.r.Context().Done():
	}
	w.ResponseWriter.WriteHeader(code)
}

const invoicesPath = "/v1/invoices/"

// notePaid remembers an invoice paid with a 2xx answer.
func (p *StripeProxy) notePaid(r *http.Request, status int) {
	id, ok := strings.CutPrefix(r.URL.Path, invoicesPath)
	if id, isPay := strings.CutSuffix(id, "/pay"); ok && isPay && status < 300 && r.Method == http.MethodPost {
		p.mu.Lock()
		p.paid[id] = true
		p.mu.Unlock()
	}
}

// withPaidStatus answers an invoice lookup with status paid once the proxy saw it paid.
func (p *StripeProxy) withPaidStatus(r *http.Request, body []byte) []byte {
	id, ok := strings.CutPrefix(r.URL.Path, invoicesPath)
	if !ok || r.Method != http.MethodGet || strings.Contains(id, "/") {
		return body
	}
	p.mu.Lock()
	paid := p.paid[id]
	p.mu.Unlock()
	if !paid {
		return body
	}
	var inv map[string]any
	if json.Unmarshal(body, &inv) != nil {
		return body
	}
	inv["status"] = "paid"
	out, err := json.Marshal(inv)
	if err != nil {
		return body
	}
	return out
}

func (p *StripeProxy) serve(w http.ResponseWriter, r *http.Request) {
	if p.takeLost(r.URL.Path) {
		<-r.Context().Done()
		w.WriteHeader(http.StatusGatewayTimeout) // recorded as such; the client is gone
		return
	}
	if d := p.takeSlow(r.URL.Path); d > 0 {
		w = &slowWriter{ResponseWriter: w, r: r, delay: d}
	}
	body, _ := io.ReadAll(r.Body)
	key := r.Header.Get("Idempotency-Key")
	// Stripe ignores idempotency keys on GET and DELETE.
	if key == "" || r.Method != http.MethodPost {
		p.forwardAndWrite(w, r, body)
		return
	}
	reqID := r.Method + " " + r.URL.Path + "\n" + string(body)
	prev, isNew := p.claim(key, reqID)
	switch {
	case isNew && p.takeDecline(r):
		p.decline(w, key)
	case isNew:
		p.forwardOnce(w, r, body, key)
	case prev.request != reqID:
		stripeError(w, http.StatusBadRequest, "idempotency_error", "",
			"Keys for idempotent requests can only be used with the same parameters they were first used with.")
	case !prev.done:
		stripeError(w, http.StatusConflict, "invalid_request_error", "idempotency_key_in_use",
			"There is currently another in-progress request using this Idempotency-Key.")
	default:
		writeStored(w, prev)
	}
}

// claim returns the entry for key, creating an in-flight one when it is new.
func (p *StripeProxy) claim(key, reqID string) (stored, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.idem[key]; ok {
		return *e, false
	}
	p.idem[key] = &stored{request: reqID}
	return stored{}, true
}

// decline answers a pay call as a declined card and keeps the answer under key.
func (p *StripeProxy) decline(w http.ResponseWriter, key string) {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{
		"type": "card_error", "code": "card_declined", "decline_code": "generic_decline", "message": "Your card was declined.",
	}})
	p.mu.Lock()
	e := p.idem[key]
	e.done, e.status, e.header, e.body = true, http.StatusPaymentRequired, http.Header{"Content-Type": {"application/json"}}, b
	p.mu.Unlock()
	writeJSON(w, http.StatusPaymentRequired, json.RawMessage(b))
}

// forwardOnce forwards the first request with key and keeps its answer; if
// the upstream cannot be reached nothing is kept, so a retry runs again.
func (p *StripeProxy) forwardOnce(w http.ResponseWriter, r *http.Request, body []byte, key string) {
	resp, respBody, err := p.forward(r, body)
	if err == nil {
		p.notePaid(r, resp.StatusCode)
	}
	p.mu.Lock()
	if err != nil {
		delete(p.idem, key)
	} else {
		e := p.idem[key]
		e.done, e.status, e.header, e.body = true, resp.StatusCode, resp.Header.Clone(), respBody
	}
	p.mu.Unlock()
	writeUpstream(w, resp, respBody, err)
}

func (p *StripeProxy) forwardAndWrite(w http.ResponseWriter, r *http.Request, body []byte) {
	resp, respBody, err := p.forward(r, body)
	if err == nil {
		p.notePaid(r, resp.StatusCode)
		respBody = p.withPaidStatus(r, respBody)
		respBody = p.withPaymentMethod(r, respBody)
		respBody = p.withPromotionCodes(r, respBody)
	}
	writeUpstream(w, resp, respBody, err)
}

// writeUpstream relays the upstream's answer, or a 502 if there was none.
func writeUpstream(w http.ResponseWriter, resp *http.Response, body []byte, err error) {
	if err != nil {
		stripeError(w, http.StatusBadGateway, "api_error", "", err.Error())
		return
	}
	copyHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// forward sends the request to the upstream and reads the whole answer.
func (p *StripeProxy) forward(r *http.Request, body []byte) (*http.Response, []byte, error) {
	target := *p.upstream
	target.Path = strings.TrimRight(p.upstream.Path, "/") + r.URL.Path
	target.RawQuery = r.URL.RawQuery
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target.String(), bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	copyHeader(req.Header, r.Header)
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	return resp, respBody, nil
}

func writeStored(w http.ResponseWriter, e stored) {
	copyHeader(w.Header(), e.header)
	w.Header().Set("Idempotent-Replayed", "true")
	w.WriteHeader(e.status)
	_, _ = w.Write(e.body)
}

// hopHeaders are connection-level and must not be copied through a proxy;
// Content-Length is left for net/http to set.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Transfer-Encoding": true,
	"Upgrade": true, "Te": true, "Trailer": true, "Content-Length": true,
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		if hopHeaders[k] {
			continue
		}
		dst[k] = append([]string(nil), vs...)
	}
}

// stripeError writes Stripe's error envelope.
// stripeFaultBody is an injected failure in Stripe's error shape: 4xx are
// invalid requests, 5xx API errors.
func stripeFaultBody(status int) []byte {
	typ := "api_error"
	if status < 500 {
		typ = "invalid_request_error"
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"type": typ, "message": http.StatusText(status)}})
	return b
}

func stripeError(w http.ResponseWriter, status int, typ, code, msg string) {
	e := map[string]string{"type": typ, "message": msg}
	if code != "" {
		e["code"] = code
	}
	writeJSON(w, status, map[string]any{"error": e})
}
