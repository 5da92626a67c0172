package testdouble_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"fulfillment/shared/testsupport/testdouble"
)

// upstream counts the requests it gets and answers each with a new id, so a
// replay is visible as a repeated id.
func upstream(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Request-Id", fmt.Sprintf("req_%d", id))
		fmt.Fprintf(w, `{"id":"pi_%d","object":"payment_intent","path":%q}`, id, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func startProxy(t *testing.T) (*testdouble.StripeProxy, *atomic.Int64) {
	t.Helper()
	up, n := upstream(t)
	p, err := testdouble.StartStripeProxy("127.0.0.1:0", up.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, n
}

type answer struct {
	status   int
	body     string
	replayed bool
}

func send(t *testing.T, method, u, key string, form url.Values) answer {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer sk_test_123")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header.Get("Idempotent-Replayed") == "true"}
}

func TestStripeProxyReplaysIdempotentRequests(t *testing.T) {
	t.Parallel()
	p, hits := startProxy(t)
	pi := p.URL() + "/v1/payment_intents"
	form := url.Values{"amount": {"2000"}, "currency": {"usd"}, "metadata[order_id]": {"ord_1"}}

	first := send(t, http.MethodPost, pi, "key-1", form)
	second := send(t, http.MethodPost, pi, "key-1", form)
	if first.status != 200 || first.replayed {
		t.Fatalf("first = %+v", first)
	}
	if second.body != first.body || second.status != first.status || !second.replayed {
		t.Errorf("second = %+v, want a replay of %+v", second, first)
	}
	if hits.Load() != 1 {
		t.Errorf("upstream got %d requests, want 1", hits.Load())
	}

	tests := []struct {
		name       string
		method     string
		key        string
		form       url.Values
		wantStatus int
		forwarded  bool
	}{
		{"new key", http.MethodPost, "key-2", form, 200, true},
		{"same key other params", http.MethodPost, "key-1", url.Values{"amount": {"1"}}, 400, false},
		{"no key", http.MethodPost, "", form, 200, true},
		{"GET ignores key", http.MethodGet, "key-1", nil, 200, true},
	}
	for _, tt := range tests {
		before := hits.Load()
		got := send(t, tt.method, pi, tt.key, tt.form)
		if got.status != tt.wantStatus || (hits.Load() > before) != tt.forwarded {
			t.Errorf("%s: status %d forwarded %v, want %d %v (body %s)",
				tt.name, got.status, hits.Load() > before, tt.wantStatus, tt.forwarded, got.body)
		}
	}

	calls := p.Calls()
	if len(calls) != 6 {
		t.Fatalf("recorded %d calls, want 6", len(calls))
	}
	c := calls[1]
	if c.Headers["Idempotency-Key"] != "key-1" || !c.Replayed || c.Body["metadata[order_id]"] != "ord_1" {
		t.Errorf("replayed call recorded as %+v", c)
	}
}

func TestStripeProxyResetForgetsKeys(t *testing.T) {
	t.Parallel()
	p, hits := startProxy(t)
	u := p.URL() + "/v1/refunds"
	send(t, http.MethodPost, u, "k", url.Values{"charge": {"ch_1"}})
	p.Reset()
	if got := send(t, http.MethodPost, u, "k", url.Values{"charge": {"ch_1"}}); got.replayed || hits.Load() != 2 {
		t.Errorf("after Reset: %+v, upstream hits %d", got, hits.Load())
	}
	if len(p.Calls()) != 1 {
		t.Errorf("Reset kept calls: %d", len(p.Calls()))
	}
}

func TestStripeProxyUpstreamDownIsNotStored(t *testing.T) {
	t.Parallel()
	up, hits := upstream(t)
	p, err := testdouble.StartStripeProxy("127.0.0.1:0", up.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	up.Close()
	if got := send(t, http.MethodPost, p.URL()+"/v1/customers", "k", nil); got.status != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", got.status)
	}
	// A retry with the same key must run again, not replay the 502.
	if got := send(t, http.MethodPost, p.URL()+"/v1/customers", "k", nil); got.replayed {
		t.Errorf("502 was replayed")
	}
	_ = hits
}

func TestCallsEndpointAndFetchCalls(t *testing.T) {
	t.Parallel()
	s, err := testdouble.StartSlack("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	resp, err := http.Post(s.URL()+"/hook", "application/json", strings.NewReader(`{"text":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("slack answered %d %q", resp.StatusCode, b)
	}

	calls, err := testdouble.FetchCalls(context.Background(), nil, s.URL())
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || calls[0].Body["text"] != "hi" || calls[0].Path != "/hook" {
		t.Fatalf("calls = %+v", calls)
	}

	req, _ := http.NewRequest(http.MethodDelete, s.URL()+testdouble.CallsPath, nil)
	if _, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(s.URL() + testdouble.CallsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw []json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil || len(raw) != 0 {
		t.Errorf("after DELETE: %v, %d calls", err, len(raw))
	}
}

func TestGitLabDoubleRejects(t *testing.T) {
	t.Parallel()
	g, err := testdouble.StartGitLab("127.0.0.1:0", []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	u := g.URL() + "/api/v4/internal/gitlab_subscriptions/namespaces/1/provision"

	good := signed(t, []byte("k"), "https://customers.gitlab.com/", time.Minute)
	free := `{"provision":{"base_product":{"plan_code":"free","seats":0,"trial":false}}}`
	tests := []struct {
		name, token, body string
		want              int
	}{
		{"valid", good, free, 200},
		{"missing token", "", free, 401},
		{"garbage token", "not.a.jwt", free, 401},
		{"other key", signed(t, []byte("other"), "https://customers.gitlab.com/", time.Minute), free, 401},
		{"other issuer", signed(t, []byte("k"), "https://gitlab.com/", time.Minute), free, 401},
		{"expired", signed(t, []byte("k"), "https://customers.gitlab.com/", -time.Minute), free, 401},
		{"no provision root", good, `{"base_product":{"plan_code":"free"}}`, 400},
		{"no base_product", good, `{"provision":{"storage":{}}}`, 400},
		{"bad date", good, `{"provision":{"base_product":{"plan_code":"x","end_date":"2027-13-01"}}}`, 400},
		{"not json", good, `plan_code=free`, 400},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(tt.body))
		if tt.token != "" {
			req.Header.Set("X-Customers-Dot-Internal-Token", tt.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
}

func signed(t *testing.T, key []byte, issuer string, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Issuer: issuer, Subject: "customers-dot-internal-api", Audience: jwt.ClaimStrings{"gitlab-subscriptions"},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestFailNextThenRecover(t *testing.T) {
	t.Parallel()
	s, err := testdouble.StartSlack("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	s.FailNext(2, http.StatusServiceUnavailable)

	var got []int
	for range 3 {
		resp, err := http.Post(s.URL()+"/hook", "application/json", strings.NewReader(`{"text":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got = append(got, resp.StatusCode)
		if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
	}
	if fmt.Sprint(got) != "[503 503 200]" {
		t.Errorf("statuses = %v", got)
	}
}

func TestFailWindowFailsEveryNthCallWithinTheWindowOnly(t *testing.T) {
	sf, err := testdouble.StartSalesforce("127.0.0.1:0", "tok")
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	sf.FailWindow(time.Now(), time.Hour, http.StatusServiceUnavailable, 2)
	sf.FailWindow(time.Now().Add(time.Hour), time.Hour, http.StatusTooManyRequests, 1) // not yet open
	for range 6 {
		req, _ := http.NewRequest(http.MethodPatch, sf.URL()+"/services/data/v62.0/sobjects/Account/Ext__c/1", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	ok, failed := testdouble.Answered(sf.Calls())
	if ok != 3 || failed != 3 {
		t.Fatalf("ok %d failed %d, want half of 6 failed", ok, failed)
	}
	for _, c := range sf.Calls() {
		if c.Status != http.StatusOK && c.Status != http.StatusCreated && c.Status != http.StatusServiceUnavailable {
			t.Fatalf("status %d", c.Status)
		}
	}
}

func TestCallsFromReturnsOnlyTheCallsNotYetSeen(t *testing.T) {
	t.Parallel()
	s, err := testdouble.StartSlack("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, text := range []string{"one", "two", "three"} {
		resp, err := http.Post(s.URL()+"/hook", "application/json", strings.NewReader(`{"text":"`+text+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if got := s.CallsFrom(1); len(got) != 2 || got[0].Body["text"] != "two" || got[1].Body["text"] != "three" {
		t.Errorf("CallsFrom(1) = %+v, want the second and third calls", got)
	}
	if got := s.CallsFrom(3); got != nil {
		t.Errorf("CallsFrom(3) = %+v, want none past the last", got)
	}
	if got := s.CallsFrom(-1); len(got) != 3 {
		t.Errorf("CallsFrom(-1) = %d calls, want all 3", len(got))
	}
}
