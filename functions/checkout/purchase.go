package checkout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"fulfillment/shared/adapters/store"
	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/quote"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/httpbody"
)

// IdempotencyHeader names the purchase: the same key returns the same
// quote and session.
const IdempotencyHeader = "Idempotency-Key"

// Purchase is the body of POST /checkouts.
type Purchase struct {
	NamespaceID    string      `json:"namespace_id,omitempty"`
	InstanceID     string      `json:"instance_id,omitempty"`
	PlanCode       string      `json:"plan_code"`
	Seats          int         `json:"seats"`
	StorageGB      int         `json:"storage_gb,omitempty"`
	ComputeMinutes int         `json:"compute_minutes,omitempty"`
	TermMonths     int         `json:"term_months,omitempty"` // default 12
	AutoRenew      *bool       `json:"auto_renew,omitempty"`  // default true
	Buyer          store.Buyer `json:"buyer"`
	// AllowPromotionCodes lets the buyer enter a promotion code at Stripe;
	// PromotionCode is one the buyer already gave (a campaign's), applied
	// to the session. At most one of the two.
	AllowPromotionCodes bool   `json:"allow_promotion_codes,omitempty"`
	PromotionCode       string `json:"promotion_code,omitempty"`
	SuccessURL          string `json:"success_url"`
	CancelURL           string `json:"cancel_url"`
}

// order is what p buys.
func (p Purchase) order() catalog.Order {
	o := catalog.Order{
		PlanCode: p.PlanCode, Seats: p.Seats, NamespaceID: p.NamespaceID, InstanceID: p.InstanceID,
		StorageGB: p.StorageGB, ComputeMinutes: p.ComputeMinutes, TermMonths: p.TermMonths, AutoRenew: true,
		Deployment: catalog.DeploymentSaaS,
	}
	if p.InstanceID != "" && p.NamespaceID == "" {
		o.Deployment = catalog.DeploymentSelfManaged
	}
	if o.TermMonths == 0 {
		o.TermMonths = 12
	}
	if p.AutoRenew != nil {
		o.AutoRenew = *p.AutoRenew
	}
	return o
}

// check refuses what the catalog does not decide: the buyer and the URLs.
func (p Purchase) check() error {
	if p.Buyer.Email == "" {
		return errors.New("buyer.email is required")
	}
	if a, err := mail.ParseAddress(p.Buyer.Email); err != nil || a.Address != p.Buyer.Email {
		return errors.New("buyer.email is not an e-mail address")
	}
	if strings.TrimSpace(p.Buyer.Name) == "" {
		return errors.New("buyer.name is required")
	}
	if p.PromotionCode != "" && p.AllowPromotionCodes {
		return errors.New("promotion_code and allow_promotion_codes exclude each other")
	}
	if len(p.PromotionCode) > 100 {
		return errors.New("promotion_code is too long")
	}
	for name, u := range map[string]string{"success_url": p.SuccessURL, "cancel_url": p.CancelURL} {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			return fmt.Errorf("%s must be an absolute http(s) URL", name)
		}
	}
	return nil
}

// Answer is the reply to a purchase: the quote and where to pay it.
type Answer struct {
	QuoteID    string       `json:"quote_id"`
	SessionID  string       `json:"checkout_session_id"`
	URL        string       `json:"url"`
	Lines      []quote.Line `json:"lines"`
	TotalCents int64        `json:"total_cents"`
	Currency   string       `json:"currency"`
	Tax        bool         `json:"tax_added_at_checkout"`
	ExpiresAt  string       `json:"expires_at"`
	// Status is open, session, completed or refused (with Refusal, the
	// reason): GET /checkouts/{id} shows how the completion was judged.
	Status  string `json:"status"`
	Refusal string `json:"refusal,omitempty"`
}

func answer(q store.Quote) Answer {
	return Answer{QuoteID: q.ID, SessionID: q.SessionID, URL: q.SessionURL, Lines: q.Lines, TotalCents: q.TotalCents,
		Currency: q.Currency, Tax: q.Tax, ExpiresAt: q.ExpiresAt.Format("2006-01-02T15:04:05Z07:00"), Status: q.Status, Refusal: q.Refusal}
}

// createCheckout handles POST /checkouts: 400 for a body it cannot read or
// a missing buyer field or key, 422 for what the catalog refuses (unknown
// plan, seats out of range), 409 for a namespace or instance with a running
// paid subscription or a key reused for another purchase, 502 when Stripe
// fails (retry with the same key), 201 with the session's URL, 200 for a
// repeated request (409 quote_expired once its quote expired unpaid).
// Nothing is stored for a refused request.
func (f *Function) createCheckout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	key := r.Header.Get(IdempotencyHeader)
	if key == "" || len(key) > 255 {
		reply(w, http.StatusBadRequest, problem("idempotency_key", IdempotencyHeader+" header (1..255 characters) is required"))
		return
	}
	body, err := httpbody.Read(w, r, maxBody)
	if err != nil {
		reply(w, http.StatusBadRequest, problem("body", "unreadable or oversized body"))
		return
	}
	var p Purchase
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		reply(w, http.StatusBadRequest, problem("body", "malformed purchase: "+err.Error()))
		return
	}
	if err := p.check(); err != nil {
		reply(w, http.StatusBadRequest, problem("invalid_request", err.Error()))
		return
	}
	o := p.order()
	caller := callerOf(ctx)
	id, fp := quoteID(caller, key), fingerprint(p)

	existing, err := f.d.Store.Quote(ctx, nil, id)
	switch {
	case err == nil && existing.Fingerprint != fp:
		reply(w, http.StatusConflict, problem("idempotency_key_reused", "this "+IdempotencyHeader+" was used for another purchase"))
		return
	case err == nil && existing.SessionID != "" && existing.Status != store.QuoteCompleted && !f.d.Clock.Now().Before(existing.ExpiresAt):
		// Its session expired with it: the URL would lead nowhere.
		reply(w, http.StatusConflict, problem("quote_expired", "this purchase's quote has expired: retry with a new "+IdempotencyHeader))
		return
	case err == nil && existing.SessionID != "":
		reply(w, http.StatusOK, answer(existing))
		return
	case err != nil && !store.IsNotFound(err):
		f.unavailable(w, r, "quote lookup", err)
		return
	}

	lines, total, err := quote.Price(o)
	if quote.IsInvalid(err) {
		reply(w, http.StatusUnprocessableEntity, problem("invalid_order", err.Error()))
		return
	} else if err != nil {
		f.unavailable(w, r, "pricing", err)
		return
	}
	running, suspended, customerID, err := f.eligibility(ctx, o)
	if err != nil {
		f.unavailable(w, r, "eligibility", err)
		return
	}
	switch {
	case existing.ID != "":
	case running != "":
		reply(w, http.StatusConflict, problem("already_subscribed",
			"the target has a running subscription ("+running+"): change it with the change commands instead"))
		return
	case suspended != "":
		// Its open invoice may still be paid (by the customer, or a retry),
		// which restores it: the target would hold two paid subscriptions.
		reply(w, http.StatusConflict, problem("suspended",
			"the target's subscription "+suspended+" is suspended: paying its open invoice restores it; a new purchase is possible once it is canceled"))
		return
	}

	promoID, err := f.promotionCode(ctx, p.PromotionCode)
	if errors.Is(err, errUnknownPromotionCode) {
		reply(w, http.StatusUnprocessableEntity, problem("invalid_order", err.Error()))
		return
	} else if err != nil {
		f.d.Logger.ErrorContext(ctx, "promotion code not looked up", "error", err.Error())
		reply(w, http.StatusBadGateway, problem("payment_provider", "the promotion code could not be checked: retry with the same "+IdempotencyHeader))
		return
	}

	now := f.d.Clock.Now().UTC()
	q, _, err := f.d.Store.CreateQuote(ctx, store.Quote{
		ID: id, Fingerprint: fp, Caller: caller, Order: o, Buyer: p.Buyer, Lines: lines, Currency: quote.Currency,
		TotalCents: total, Tax: f.d.StripeTax, AllowPromotionCodes: p.AllowPromotionCodes,
		PromotionCode: p.PromotionCode, PromotionCodeID: promoID, CreatedAt: now,
		ExpiresAt: now.Add(f.d.QuoteTTL), Status: store.QuoteOpen, CustomerID: customerID,
		SuccessURL: p.SuccessURL, CancelURL: p.CancelURL,
	})
	if err != nil {
		f.unavailable(w, r, "quote", err)
		return
	}
	if q.Fingerprint != fp { // a concurrent request with the key won
		reply(w, http.StatusConflict, problem("idempotency_key_reused", "this "+IdempotencyHeader+" was used for another purchase"))
		return
	}
	if q.SessionID == "" && q.ExpiresAt.Sub(now) < 30*time.Minute {
		// Stripe takes a session expiry at least 30 minutes ahead: a retry
		// this late cannot finish the quote. A new key quotes afresh.
		reply(w, http.StatusConflict, problem("quote_expired", "this purchase's quote is about to expire: retry with a new "+IdempotencyHeader))
		return
	}
	q, err = f.session(ctx, q)
	if err != nil {
		f.d.Logger.ErrorContext(ctx, "checkout session not created", "quote_id", q.ID, "error", err.Error())
		reply(w, http.StatusBadGateway, problem("payment_provider", "the checkout could not be created: retry with the same "+IdempotencyHeader))
		return
	}
	f.d.Logger.InfoContext(ctx, "checkout created", "quote_id", q.ID, "checkout_session_id", q.SessionID,
		"plan_code", o.PlanCode, "seats", o.Seats, "total_cents", q.TotalCents, "currency", q.Currency, "caller", caller)
	reply(w, http.StatusCreated, answer(q))
}

// session creates (or, by the same idempotency keys, finds again) the
// quote's Stripe customer and checkout session, and stores them on the quote.
func (f *Function) session(ctx context.Context, q store.Quote) (store.Quote, error) {
	if q.CustomerID == "" {
		id, err := f.d.Payments.CreateCustomer(ctx, stripe.CustomerRequest{
			Email: q.Buyer.Email, Name: q.Buyer.Name, Company: q.Buyer.Company, Key: "customer-" + q.ID,
		})
		if err != nil {
			return q, err
		}
		q.CustomerID = id
		if err := f.d.Store.SaveQuote(ctx, q); err != nil {
			return q, err
		}
	}
	req := stripe.SessionRequest{
		QuoteID: q.ID, Order: q.Order, CustomerID: q.CustomerID, Currency: q.Currency, SuccessURL: q.SuccessURL, CancelURL: q.CancelURL,
		ExpiresAt: q.ExpiresAt, AllowPromotionCodes: q.AllowPromotionCodes, PromotionCodeID: q.PromotionCodeID,
		AutomaticTax: q.Tax, Key: "checkout-session-" + q.ID,
	}
	for _, l := range q.Lines {
		req.Lines = append(req.Lines, stripe.SessionLine{Name: l.Description, UnitCents: l.UnitCents, Quantity: l.Quantity})
	}
	s, err := f.d.Payments.CreateCheckoutSession(ctx, req)
	if err != nil {
		return q, err
	}
	q.SessionID, q.SessionURL, q.Status = s.ID, s.URL, store.QuoteSession
	return q, f.d.Store.SaveQuote(ctx, q)
}

var errUnknownPromotionCode = errors.New("unknown or inactive promotion code")

// promotionCode resolves the code a buyer gave to its Stripe id ("" for no
// code) before anything is stored, so a code that does not exist is the
// caller's mistake (422) and not a session Stripe refuses later.
func (f *Function) promotionCode(ctx context.Context, code string) (string, error) {
	if code == "" {
		return "", nil
	}
	id, err := f.d.Payments.PromotionCode(ctx, code)
	if err != nil {
		return "", fmt.Errorf("checkout.promotionCode: %w", err)
	}
	if id == "" {
		return "", errUnknownPromotionCode
	}
	return id, nil
}

// eligibility finds a running paid subscription of the order's target
// (its id, "" for none), a suspended one (which a payment restores), and
// the Stripe customer of its latest subscription, to reuse.
func (f *Function) eligibility(ctx context.Context, o catalog.Order) (running, suspended, customerID string, err error) {
	field, value := "order.namespace_id", o.NamespaceID
	if o.Deployment == catalog.DeploymentSelfManaged {
		field, value = "order.instance_id", o.InstanceID
	}
	subs, err := f.d.Store.SubscriptionsWhere(ctx, field, value)
	if err != nil {
		return "", "", "", fmt.Errorf("checkout.eligibility: %w", err)
	}
	var latest *subscription.Subscription
	for i, s := range subs {
		switch {
		case Running(s.Status):
			running = s.ID
		case s.Status == subscription.Suspended:
			suspended = s.ID
		}
		if s.Customer.ProviderCustomerID != "" && (latest == nil || s.TermStart.After(latest.TermStart)) {
			latest = &subs[i]
		}
	}
	if latest != nil {
		customerID = latest.Customer.ProviderCustomerID
	}
	return running, suspended, customerID, nil
}

// Running reports whether a subscription in status holds (or is settling)
// a paid term: a second purchase for its target is refused.
func Running(s subscription.Status) bool {
	switch s {
	case subscription.Pending, subscription.Active, subscription.PastDue, subscription.Grace:
		return true
	}
	return false
}

// showQuote handles GET /checkouts/{id}: the caller's own quotes only.
func (f *Function) showQuote(w http.ResponseWriter, r *http.Request) {
	q, err := f.d.Store.Quote(r.Context(), nil, r.PathValue("id"))
	switch {
	case store.IsNotFound(err) || (err == nil && q.Caller != callerOf(r.Context())):
		reply(w, http.StatusNotFound, problem("not_found", "no such quote"))
	case err != nil:
		f.unavailable(w, r, "quote lookup", err)
	default:
		reply(w, http.StatusOK, answer(q))
	}
}

func (f *Function) unavailable(w http.ResponseWriter, r *http.Request, what string, err error) {
	f.d.Logger.ErrorContext(r.Context(), "checkout: "+what+" failed", "error", err.Error())
	reply(w, http.StatusServiceUnavailable, problem("unavailable", "temporarily unavailable; retry with the same "+IdempotencyHeader))
}

// quoteID derives a quote's id from who asked and their idempotency key.
func quoteID(caller, key string) string {
	h := sha256.Sum256([]byte(caller + "\x00" + key))
	return "q_" + hex.EncodeToString(h[:12])
}

// fingerprint is a hash of the purchase as read, so formatting does not matter.
func fingerprint(p Purchase) string {
	b, _ := json.Marshal(p)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
