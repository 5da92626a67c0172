package checkout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"fulfillment/functions/checkout"
	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/gitlab"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/testsupport/oidcissuer"
	"fulfillment/shared/testsupport/storetest"
	"fulfillment/shared/testsupport/testdouble"
)

var (
	stripeMock *testdouble.StripeMock
	issuer     *oidcissuer.Issuer
)

const (
	audience = "https://checkout.fulfillment.test"
	caller   = "gitlab-com@fulfillment-test.iam.gserviceaccount.com"
	jwtKey   = "gitlab-jwt-key-for-tests"
)

func TestMain(m *testing.M) {
	var err error
	if stripeMock, err = testdouble.StartStripeMock(context.Background(), io.Discard); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if issuer, err = oidcissuer.Start("127.0.0.1:0"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := storetest.Run(m)
	issuer.Close()
	stripeMock.Stop()
	os.Exit(code)
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var t0 = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

type fixture struct {
	st     *store.Store
	rec    *pubsub.Recorder
	stripe *testdouble.StripeProxy
	gitlab *testdouble.GitLab
	clock  *testClock
	srv    *httptest.Server
}

func setup(t testing.TB, tax bool) fixture { return setupWith(t, options{tax: tax}) }

// options shape a fixture beyond setup's.
type options struct {
	tax bool
	// wrap wraps the function's database (nil: none), to step in between
	// the function's reads; the fixture's store is unwrapped.
	wrap func(docstore.DB) docstore.DB
	// tickCallers run the trial tick, and may call nothing else.
	tickCallers []string
}

func setupWith(t testing.TB, o options) fixture {
	t.Helper()
	st := storetest.Open(t, "checkout")
	fnStore := st
	if o.wrap != nil {
		fnStore = store.New(o.wrap(st.DB))
	}
	proxy, err := testdouble.StartStripeProxy("127.0.0.1:0", stripeMock.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	gl, err := testdouble.StartGitLab("127.0.0.1:0", []byte(jwtKey))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gl.Close() })
	fx := fixture{st: st, rec: &pubsub.Recorder{}, stripe: proxy, gitlab: gl, clock: &testClock{t: t0}}
	f := checkout.New(checkout.Deps{
		Store: fnStore, Publisher: fx.rec, Clock: fx.clock, Logger: slog.New(slog.DiscardHandler),
		Payments:    stripe.NewBilling("sk_test_123", proxy.URL(), 10*time.Second),
		GitLab:      gitlab.NewClient(gl.URL(), []byte(jwtKey), nil),
		Auth:        checkout.NewOIDC(context.Background(), issuer.URL(), issuer.JWKSURL(), audience, append([]string{caller}, o.tickCallers...)),
		TickCallers: o.tickCallers,
		StripeTax:   o.tax,
	})
	fx.srv = httptest.NewServer(f)
	t.Cleanup(fx.srv.Close)
	return fx
}

func purchase(mut func(map[string]any)) map[string]any {
	p := map[string]any{
		"namespace_id": "ns-42", "plan_code": "premium", "seats": 10, "storage_gb": 20, "term_months": 12,
		"buyer":       map[string]any{"name": "Ada Buyer", "email": "ada@example.com", "company": "Example Inc"},
		"success_url": "https://gitlab.example/success", "cancel_url": "https://gitlab.example/cancel",
		"allow_promotion_codes": true,
	}
	if mut != nil {
		mut(p)
	}
	return p
}

func (fx fixture) do(t testing.TB, method, path, token, key string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, fx.srv.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set(checkout.IdempotencyHeader, key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func token() string { return issuer.Token(caller, audience, time.Hour) }

func (fx fixture) count(t *testing.T, collection string) int {
	t.Helper()
	docs, err := fx.st.DB.Query(context.Background(), docstore.Query{Collection: collection})
	if err != nil {
		t.Fatal(err)
	}
	return len(docs)
}

func (fx fixture) stripeCalls(path string) []testdouble.Call {
	var out []testdouble.Call
	for _, c := range fx.stripe.Calls() {
		if c.Method == http.MethodPost && c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

func TestCheckoutCreatesQuoteAndSession(t *testing.T) {
	fx := setup(t, false)
	status, ans := fx.do(t, "POST", "/checkouts", token(), "order-1", purchase(nil))
	if status != http.StatusCreated {
		t.Fatalf("status = %d %v", status, ans)
	}
	// 10 premium seats for a year ($348 each) and 2 storage packs ($60 each).
	if ans["total_cents"] != float64(10*34800+2*6000) || ans["currency"] != "usd" || ans["url"] == "" {
		t.Fatalf("answer = %v", ans)
	}
	qid := ans["quote_id"].(string)
	q, err := fx.st.Quote(context.Background(), nil, qid)
	if err != nil {
		t.Fatal(err)
	}
	if q.SessionID == "" || q.SessionID != ans["checkout_session_id"] || q.TotalCents != 360000 || q.CustomerID == "" || !q.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("stored quote = %+v", q)
	}
	customers := fx.stripeCalls("/v1/customers")
	if len(customers) != 1 || customers[0].Body["email"] != "ada@example.com" {
		t.Fatalf("customer creations = %+v", customers)
	}
	sessions := fx.stripeCalls("/v1/checkout/sessions")
	if len(sessions) != 1 {
		t.Fatalf("session creations = %d", len(sessions))
	}
	b := sessions[0].Body
	want := map[string]any{
		"mode": "payment", "customer": q.CustomerID, "client_reference_id": qid,
		"payment_intent_data[setup_future_usage]": "off_session", "allow_promotion_codes": "true",
		"metadata[quote_id]": qid, "metadata[plan_code]": "premium", "metadata[seats]": "10", "metadata[namespace_id]": "ns-42",
		"metadata[storage_gb]": "20", "payment_intent_data[metadata][quote_id]": qid,
		"line_items[0][price_data][unit_amount]": "34800", "line_items[0][quantity]": "10", "line_items[0][price_data][currency]": "usd",
		"line_items[1][price_data][unit_amount]": "6000", "line_items[1][quantity]": "2",
		"expires_at": fmt.Sprint(t0.Add(time.Hour).Unix()), "success_url": "https://gitlab.example/success",
	}
	for k, v := range want {
		if b[k] != v {
			t.Errorf("session %s = %v, want %v", k, b[k], v)
		}
	}
	if _, ok := b["automatic_tax[enabled]"]; ok {
		t.Errorf("automatic tax asked for with Stripe Tax off")
	}
	if sessions[0].Headers["Idempotency-Key"] != "checkout-session-"+qid {
		t.Errorf("session Idempotency-Key = %q", sessions[0].Headers["Idempotency-Key"])
	}

	// The same key again: the same session, nothing new at Stripe.
	status, again := fx.do(t, "POST", "/checkouts", token(), "order-1", purchase(nil))
	if status != http.StatusOK || again["checkout_session_id"] != ans["checkout_session_id"] || again["quote_id"] != qid {
		t.Fatalf("repeat = %d %v", status, again)
	}
	if n := len(fx.stripeCalls("/v1/checkout/sessions")); n != 1 {
		t.Fatalf("session creations after repeat = %d", n)
	}
	// The same key for another purchase is refused.
	if status, _ := fx.do(t, "POST", "/checkouts", token(), "order-1", purchase(func(p map[string]any) { p["seats"] = 11 })); status != http.StatusConflict {
		t.Fatalf("key reused: status = %d", status)
	}
	if n := fx.count(t, store.Quotes); n != 1 {
		t.Fatalf("quotes = %d", n)
	}
}

func TestCheckoutStripeTaxAsksForAutomaticTax(t *testing.T) {
	fx := setup(t, true)
	if status, ans := fx.do(t, "POST", "/checkouts", token(), "taxed", purchase(nil)); status != http.StatusCreated || ans["tax_added_at_checkout"] != true {
		t.Fatalf("status = %d %v", status, ans)
	}
	b := fx.stripeCalls("/v1/checkout/sessions")[0].Body
	if b["automatic_tax[enabled]"] != "true" || b["line_items[0][price_data][tax_behavior]"] != "exclusive" || b["customer_update[address]"] != "auto" {
		t.Fatalf("session = %v", b)
	}
}

// A campaign's promotion code given with the purchase is looked up at
// Stripe, applied to the session (discounts[0][promotion_code], not the
// buyer's free choice), and kept on the quote, which then lets Stripe's
// discount through at completion. A code Stripe does not know is the
// caller's mistake: 422, nothing stored, no customer or session.
func TestCheckoutAppliesAGivenPromotionCode(t *testing.T) {
	fx := setup(t, false)
	fx.stripe.ActivatePromotionCode("FALL25", "promo_fall25")
	withCode := func(code string) map[string]any {
		return purchase(func(p map[string]any) { delete(p, "allow_promotion_codes"); p["promotion_code"] = code })
	}
	status, ans := fx.do(t, "POST", "/checkouts", token(), "promo", withCode("fall25"))
	if status != http.StatusCreated {
		t.Fatalf("status = %d %v", status, ans)
	}
	b := fx.stripeCalls("/v1/checkout/sessions")[0].Body
	if b["discounts[0][promotion_code]"] != "promo_fall25" || b["allow_promotion_codes"] != nil {
		t.Fatalf("session = %v", b)
	}
	q, err := fx.st.Quote(context.Background(), nil, ans["quote_id"].(string))
	if err != nil || q.PromotionCode != "fall25" || q.PromotionCodeID != "promo_fall25" || !q.Quoted().Discounts {
		t.Fatalf("quote = %+v, %v", q, err)
	}

	if status, ans := fx.do(t, "POST", "/checkouts", token(), "no-such-promo", withCode("NOPE")); status != http.StatusUnprocessableEntity || ans["detail"] == "" {
		t.Fatalf("unknown code: %d %v", status, ans)
	}
	both := withCode("FALL25")
	both["allow_promotion_codes"] = true
	if status, _ := fx.do(t, "POST", "/checkouts", token(), "both", both); status != http.StatusBadRequest {
		t.Fatalf("code and allow_promotion_codes: %d", status)
	}
	if n := fx.count(t, store.Quotes); n != 1 {
		t.Fatalf("quotes = %d, want only the good one", n)
	}
	if c, s := len(fx.stripeCalls("/v1/customers")), len(fx.stripeCalls("/v1/checkout/sessions")); c != 1 || s != 1 {
		t.Fatalf("%d customers and %d sessions created, want 1 each", c, s)
	}
}

func TestCheckoutReusesTheNamespacesCustomer(t *testing.T) {
	fx := setup(t, false)
	old := &subscription.Subscription{ID: "sub-old", Status: subscription.Expired, Order: catalog.Order{NamespaceID: "ns-42"},
		Customer: catalog.Customer{ProviderCustomerID: "cus_existing"}}
	if err := fx.st.DB.Set(context.Background(), store.Subscriptions, old.ID, old); err != nil {
		t.Fatal(err)
	}
	if status, ans := fx.do(t, "POST", "/checkouts", token(), "again", purchase(nil)); status != http.StatusCreated {
		t.Fatalf("status = %d %v", status, ans)
	}
	if n := len(fx.stripeCalls("/v1/customers")); n != 0 {
		t.Fatalf("customers created = %d, want the existing one reused", n)
	}
	if c := fx.stripeCalls("/v1/checkout/sessions")[0].Body["customer"]; c != "cus_existing" {
		t.Fatalf("session customer = %v", c)
	}
}

func TestCheckoutRefusesBadRequestsAndStoresNothing(t *testing.T) {
	fx := setup(t, false)
	// Every status that holds or settles a paid term blocks a second
	// purchase, and so does a suspension (a payment restores it).
	running := map[string]subscription.Status{"ns-paid": subscription.Active, "ns-pending": subscription.Pending,
		"ns-pastdue": subscription.PastDue, "ns-grace": subscription.Grace, "ns-suspended": subscription.Suspended}
	for ns, status := range running {
		fx.subscriptionIn(t, "sub-"+ns, ns, status)
	}
	onNamespace := func(ns string) map[string]any { return purchase(func(p map[string]any) { p["namespace_id"] = ns }) }
	cases := []struct {
		name  string
		token string
		key   string
		body  map[string]any
		want  int
	}{
		{"unknown plan", token(), "k1", purchase(func(p map[string]any) { p["plan_code"] = "gold" }), http.StatusUnprocessableEntity},
		{"zero seats", token(), "k2", purchase(func(p map[string]any) { p["seats"] = 0 }), http.StatusUnprocessableEntity},
		{"too many seats", token(), "k3", purchase(func(p map[string]any) { p["seats"] = catalog.MaxSeats + 1 }), http.StatusUnprocessableEntity},
		{"missing e-mail", token(), "k4", purchase(func(p map[string]any) { p["buyer"] = map[string]any{"name": "Ada"} }), http.StatusBadRequest},
		{"bad e-mail", token(), "k5", purchase(func(p map[string]any) { p["buyer"] = map[string]any{"name": "Ada", "email": "nope"} }), http.StatusBadRequest},
		{"no success url", token(), "k6", purchase(func(p map[string]any) { delete(p, "success_url") }), http.StatusBadRequest},
		{"no idempotency key", token(), "", purchase(nil), http.StatusBadRequest},
		{"active subscription", token(), "k7", onNamespace("ns-paid"), http.StatusConflict},
		{"pending subscription", token(), "k14", onNamespace("ns-pending"), http.StatusConflict},
		{"past-due subscription", token(), "k15", onNamespace("ns-pastdue"), http.StatusConflict},
		{"subscription in grace", token(), "k16", onNamespace("ns-grace"), http.StatusConflict},
		{"suspended subscription", token(), "k17", onNamespace("ns-suspended"), http.StatusConflict},
		{"unauthenticated", "", "k8", purchase(nil), http.StatusUnauthorized},
		{"forged token", issuer.Forged(caller, audience), "k9", purchase(nil), http.StatusUnauthorized},
		{"wrong audience", issuer.Token(caller, "https://elsewhere", time.Hour), "k10", purchase(nil), http.StatusUnauthorized},
		{"expired token", issuer.Token(caller, audience, -time.Minute), "k11", purchase(nil), http.StatusUnauthorized},
		{"caller not allowed", issuer.Token("intruder@example.com", audience, time.Hour), "k12", purchase(nil), http.StatusUnauthorized},
		{"garbage token", "not-a-jwt", "k13", purchase(nil), http.StatusUnauthorized},
	}
	for _, c := range cases {
		status, ans := fx.do(t, "POST", "/checkouts", c.token, c.key, c.body)
		if status != c.want || ans["detail"] == "" {
			t.Errorf("%s: status = %d %v, want %d with a detail", c.name, status, ans, c.want)
		}
	}
	for collection, want := range map[string]int{store.Quotes: 0, store.Trials: 0, store.DeadLetters: 0, store.Subscriptions: len(running)} {
		if n := fx.count(t, collection); n != want {
			t.Errorf("%s after refused requests: %d documents, want %d", collection, n, want)
		}
	}
	if calls := fx.stripe.Calls(); len(calls) != 0 {
		t.Fatalf("Stripe called for refused requests: %+v", calls[0])
	}
}

func TestCheckoutStripeDownAnswers502AndRetryFinishes(t *testing.T) {
	fx := setup(t, false)
	fx.stripe.FailNext(1, http.StatusBadRequest) // an answer stripe-go does not retry
	if status, _ := fx.do(t, "POST", "/checkouts", token(), "flaky", purchase(nil)); status != http.StatusBadGateway {
		t.Fatalf("status = %d, want 502", status)
	}
	status, ans := fx.do(t, "POST", "/checkouts", token(), "flaky", purchase(nil))
	if status != http.StatusCreated || ans["checkout_session_id"] == "" {
		t.Fatalf("retry = %d %v", status, ans)
	}
	if n := fx.count(t, store.Quotes); n != 1 {
		t.Fatalf("quotes = %d", n)
	}
	if !strings.HasPrefix(ans["quote_id"].(string), "q_") {
		t.Fatalf("quote id = %v", ans["quote_id"])
	}
}

// A retry too late for Stripe's 30-minute minimum session expiry is told
// to quote afresh with a new key.
func TestCheckoutRetryTooLateToFinishTheQuoteIsRefused(t *testing.T) {
	fx := setup(t, false)
	fx.stripe.FailNext(1, http.StatusBadRequest)
	if status, _ := fx.do(t, "POST", "/checkouts", token(), "late", purchase(nil)); status != http.StatusBadGateway {
		t.Fatalf("status = %d, want 502", status)
	}
	fx.clock.Set(t0.Add(45 * time.Minute))
	if status, ans := fx.do(t, "POST", "/checkouts", token(), "late", purchase(nil)); status != http.StatusConflict || ans["error"] != "quote_expired" {
		t.Fatalf("late retry = %d %v", status, ans)
	}
	if status, _ := fx.do(t, "POST", "/checkouts", token(), "late-2", purchase(nil)); status != http.StatusCreated {
		t.Fatalf("new key = %d", status)
	}
}

// A repeat of a purchase whose quote (and so its session) expired unpaid
// is told to quote afresh, not handed a dead URL; once the completion was
// accepted, the repeat still shows the quote.
func TestCheckoutRepeatAfterTheQuoteExpiredIsRefused(t *testing.T) {
	fx := setup(t, false)
	if status, _ := fx.do(t, "POST", "/checkouts", token(), "old", purchase(nil)); status != http.StatusCreated {
		t.Fatalf("status = %d", status)
	}
	fx.clock.Set(t0.Add(time.Hour))
	if status, ans := fx.do(t, "POST", "/checkouts", token(), "old", purchase(nil)); status != http.StatusConflict || ans["error"] != "quote_expired" {
		t.Fatalf("repeat after expiry = %d %v", status, ans)
	}
	status, ans := fx.do(t, "POST", "/checkouts", token(), "paid", purchase(func(p map[string]any) { p["namespace_id"] = "ns-43" }))
	if status != http.StatusCreated {
		t.Fatalf("status = %d", status)
	}
	if err := fx.st.SettleQuote(context.Background(), nil, ans["quote_id"].(string), store.QuoteCompleted, "", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	fx.clock.Set(t0.Add(3 * time.Hour))
	if status, again := fx.do(t, "POST", "/checkouts", token(), "paid", purchase(func(p map[string]any) { p["namespace_id"] = "ns-43" })); status != http.StatusOK || again["status"] != store.QuoteCompleted {
		t.Fatalf("repeat of a paid quote = %d %v", status, again)
	}
}

// Two requests with one key at the same time end in one quote, one
// customer and one session. The one that meets the other's Stripe call in
// flight (Stripe answers idempotency_key_in_use) is told to retry with the
// key, and that retry answers the same session.
func TestCheckoutConcurrentRequestsWithOneKeyMakeOneSession(t *testing.T) {
	fx := setup(t, false)
	var wg sync.WaitGroup
	answers := make([]map[string]any, 2)
	statuses := make([]int, 2)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], answers[i] = fx.do(t, "POST", "/checkouts", token(), "twice", purchase(nil))
		}()
	}
	wg.Wait()
	status, final := fx.do(t, "POST", "/checkouts", token(), "twice", purchase(nil))
	if status != http.StatusOK || final["checkout_session_id"] == "" {
		t.Fatalf("retry after both = %d %v", status, final)
	}
	for i, st := range statuses {
		switch {
		case st == http.StatusBadGateway && answers[i]["error"] == "payment_provider":
		case (st == http.StatusCreated || st == http.StatusOK) && answers[i]["checkout_session_id"] == final["checkout_session_id"]:
		default:
			t.Fatalf("request %d = %d %v, want the session %v or a retry", i, st, answers[i], final["checkout_session_id"])
		}
	}
	keys := map[string]bool{}
	for _, c := range append(fx.stripeCalls("/v1/checkout/sessions"), fx.stripeCalls("/v1/customers")...) {
		keys[c.Path+" "+c.Headers["Idempotency-Key"]] = true
	}
	if n := fx.count(t, store.Quotes); n != 1 || len(keys) != 2 {
		t.Fatalf("%d quotes; Stripe creations %v, want one customer and one session", n, keys)
	}
}

// A self-managed instance is bought like a namespace: its session names
// the instance, and the quote's order is self-managed.
func TestCheckoutForASelfManagedInstance(t *testing.T) {
	fx := setup(t, false)
	status, ans := fx.do(t, "POST", "/checkouts", token(), "sm", purchase(func(p map[string]any) { delete(p, "namespace_id"); p["instance_id"] = "inst-1" }))
	if status != http.StatusCreated {
		t.Fatalf("status = %d %v", status, ans)
	}
	b := fx.stripeCalls("/v1/checkout/sessions")[0].Body
	if b["metadata[instance_id]"] != "inst-1" || b["metadata[deployment]"] != catalog.DeploymentSelfManaged || b["metadata[namespace_id]"] != nil {
		t.Fatalf("session = %v", b)
	}
	q, _ := fx.st.Quote(context.Background(), nil, ans["quote_id"].(string))
	if q.Order.Deployment != catalog.DeploymentSelfManaged || q.Order.InstanceID != "inst-1" {
		t.Fatalf("quote order = %+v", q.Order)
	}
	// Both targets, or none, are the caller's mistake.
	both := purchase(func(p map[string]any) { p["instance_id"] = "inst-2" })
	if status, _ := fx.do(t, "POST", "/checkouts", token(), "sm-both", both); status != http.StatusUnprocessableEntity {
		t.Fatalf("both targets = %d", status)
	}
}
