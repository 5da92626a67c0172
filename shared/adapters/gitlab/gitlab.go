// Package gitlab calls GitLab's internal subscription-provisioning API, the
// one CustomersDot uses to apply a purchase to a root namespace.
package gitlab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"fulfillment/shared/runtime/failure"
)

// The claims GitLab's GitlabSubscriptions::API::Internal::Auth verifies.
const (
	TokenHeader = "X-Customers-Dot-Internal-Token"
	// DefaultIssuer is the subscription portal URL with a trailing slash, as
	// published in its OpenID configuration.
	DefaultIssuer = "https://customers.gitlab.com/"
	Audience      = "gitlab-subscriptions"
	Subject       = "customers-dot-internal-api"
	// tokenTTL keeps a leaked token useless within minutes.
	tokenTTL = 5 * time.Minute
)

// ProvisionRequest is the "provision" hash of
// POST /api/v4/internal/gitlab_subscriptions/namespaces/:id/provision
// (gitlab-org/gitlab ee/lib/gitlab_subscriptions/api/internal/namespaces/provision.rb).
// GitLab's SyncNamespaceService
// (ee/app/services/gitlab_subscriptions/provision/sync_namespace_service.rb)
// skips a blank storage or compute_minutes hash and otherwise updates the
// namespace with what it holds, so a nil Storage or ComputeMinutes leaves
// GitLab's value unchanged and a non-nil one sets it, zero included: that is
// how bought extras are removed.
type ProvisionRequest struct {
	BaseProduct    BaseProduct     `json:"base_product"`
	Storage        *Storage        `json:"storage,omitempty"`
	ComputeMinutes *ComputeMinutes `json:"compute_minutes,omitempty"`
}

// TrialProduct is the base product of a trial of plan on namespaceID from
// starts to ends, with GitLab's trial fields (checkout starts and extends
// trials with it; provisioning returns a namespace to its trial with it).
func TrialProduct(namespaceID, plan string, starts, ends time.Time) BaseProduct {
	from, to := starts.Format(time.DateOnly), ends.Format(time.DateOnly)
	return BaseProduct{PlanCode: plan, StartDate: from, EndDate: to, Trial: true, TrialStartsOn: from, TrialEndsOn: to,
		PurchaseXID: "trial-" + namespaceID}
}

// BaseProduct is the subscription itself. Dates are YYYY-MM-DD. Expiry is a
// provision with PlanCode "free" and Seats 0, so Seats, Trial and AutoRenew
// are always sent.
type BaseProduct struct {
	PlanCode      string `json:"plan_code"`
	Seats         int    `json:"seats"`
	MaxSeatsUsed  int    `json:"max_seats_used,omitempty"`
	StartDate     string `json:"start_date,omitempty"`
	EndDate       string `json:"end_date,omitempty"`
	AutoRenew     bool   `json:"auto_renew"`
	Trial         bool   `json:"trial"`
	TrialStartsOn string `json:"trial_starts_on,omitempty"`
	TrialEndsOn   string `json:"trial_ends_on,omitempty"`
	// PurchaseXID is our idempotency key (the order/subscription id): it
	// ties a provision to the purchase in logs and in the test doubles.
	// GitLab's base_product params do not declare it, so GitLab drops it;
	// redelivery is still safe because provisioning sets state rather than
	// adding to it.
	PurchaseXID string `json:"purchase_xid,omitempty"`
}

// Storage is purchased storage on top of the plan, in MiB. Both fields are
// always sent: a size of 0 removes the extra storage, and an empty end date
// goes as null, which clears the namespace's
// additional_purchased_storage_ends_on.
type Storage struct {
	AdditionalPurchasedStorageSize   int
	AdditionalPurchasedStorageEndsOn string
}

// MarshalJSON writes the storage hash with an empty end date as null.
func (s Storage) MarshalJSON() ([]byte, error) {
	var endsOn *string
	if s.AdditionalPurchasedStorageEndsOn != "" {
		endsOn = &s.AdditionalPurchasedStorageEndsOn
	}
	return json.Marshal(struct {
		Size   int     `json:"additional_purchased_storage_size"`
		EndsOn *string `json:"additional_purchased_storage_ends_on"`
	}{s.AdditionalPurchasedStorageSize, endsOn})
}

// ComputeMinutes are CI minutes: the plan's quota and purchased extras.
// ExtraSharedRunnersMinutesLimit is always sent (0 removes bought minutes);
// SharedRunnersMinutesLimit, the plan's quota, is left to GitLab's plan
// default unless set.
type ComputeMinutes struct {
	SharedRunnersMinutesLimit      int `json:"shared_runners_minutes_limit,omitempty"`
	ExtraSharedRunnersMinutesLimit int `json:"extra_shared_runners_minutes_limit"`
}

// Client provisions namespaces on one GitLab instance.
type Client struct {
	baseURL string
	key     []byte
	hc      *http.Client
	// Issuer is the token's iss claim; staging portals differ from production.
	Issuer string
}

// NewClient returns a client for baseURL (e.g. https://gitlab.com) signing
// tokens with signingKey. A nil hc gets a 10 s timeout.
func NewClient(baseURL string, signingKey []byte, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{baseURL: strings.TrimRight(baseURL, "/"), key: signingKey, hc: hc, Issuer: DefaultIssuer}
}

// Provision applies req to the root namespace namespaceID. Bad input and 4xx
// answers are permanent; network errors, 408, 429 and 5xx are transient.
func (c *Client) Provision(ctx context.Context, namespaceID string, req ProvisionRequest) error {
	if err := validate(namespaceID, req); err != nil {
		return fmt.Errorf("gitlab.Provision: %w", failure.Permanent(err))
	}
	if err := c.post(ctx, namespaceID, req); err != nil {
		return fmt.Errorf("gitlab.Provision: namespace %s: %w", namespaceID, err)
	}
	return nil
}

func (c *Client) post(ctx context.Context, namespaceID string, req ProvisionRequest) error {
	body, err := json.Marshal(map[string]ProvisionRequest{"provision": req})
	if err != nil {
		return failure.Permanent(err)
	}
	token, err := c.token(time.Now())
	if err != nil {
		return failure.Permanent(err)
	}
	u := c.baseURL + "/api/v4/internal/gitlab_subscriptions/namespaces/" + url.PathEscape(namespaceID) + "/provision"
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return failure.Permanent(failure.Call("gitlab", err))
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set(TokenHeader, token)
	resp, err := c.hc.Do(hreq)
	if err != nil {
		return failure.Call("gitlab", err) // network error or timeout: transient
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return failure.FromResponse("gitlab", resp, respBody)
	}
	return nil
}

// Current is what a namespace holds now, as GitLab reports it: the plan and
// the bought extras.
type Current struct {
	PlanCode     string
	Seats        int
	MaxSeatsUsed int
	StartDate    string
	EndDate      string
	AutoRenew    bool
	Trial        bool

	AdditionalPurchasedStorageSize   int
	AdditionalPurchasedStorageEndsOn string
	SharedRunnersMinutesLimit        int
	ExtraSharedRunnersMinutesLimit   int
}

// Matches reports whether GitLab already holds what req would provision, so
// a repeated delivery (after a crash between the call and our commit) need
// not call again. It compares everything req sets: the base product and,
// when req carries them, the storage and compute minutes. PurchaseXID is not
// compared: GitLab does not keep it.
func (c Current) Matches(req ProvisionRequest) bool {
	bp := req.BaseProduct
	// max_seats_used is left out of a request when 0 (omitempty), and GitLab
	// keeps a value it is not sent: only a value sent must match.
	if c.PlanCode != bp.PlanCode || c.Seats != bp.Seats || (bp.MaxSeatsUsed != 0 && c.MaxSeatsUsed != bp.MaxSeatsUsed) ||
		c.StartDate != bp.StartDate || c.EndDate != bp.EndDate || c.AutoRenew != bp.AutoRenew || c.Trial != bp.Trial {
		return false
	}
	if s := req.Storage; s != nil && (c.AdditionalPurchasedStorageSize != s.AdditionalPurchasedStorageSize ||
		c.AdditionalPurchasedStorageEndsOn != s.AdditionalPurchasedStorageEndsOn) {
		return false
	}
	if m := req.ComputeMinutes; m != nil && (c.ExtraSharedRunnersMinutesLimit != m.ExtraSharedRunnersMinutesLimit ||
		(m.SharedRunnersMinutesLimit != 0 && c.SharedRunnersMinutesLimit != m.SharedRunnersMinutesLimit)) {
		return false
	}
	return true
}

// Current reads what the namespace holds from the two internal endpoints the
// JWT authenticates: its subscription
// (GET /api/v4/internal/gitlab_subscriptions/namespaces/:id/gitlab_subscription,
// ee/lib/gitlab_subscriptions/api/internal/subscriptions.rb, shaped by the
// GitlabSubscription entity: plan, usage, billing)
// and its limits (GET /api/v4/internal/gitlab_subscriptions/namespaces/:id,
// ee/lib/gitlab_subscriptions/api/internal/namespaces.rb, shaped by
// ee/lib/gitlab_subscriptions/api/entities/internal/namespace.rb). ok is
// false when the namespace does not exist.
func (c *Client) Current(ctx context.Context, namespaceID string) (cur Current, ok bool, err error) {
	base := c.baseURL + "/api/v4/internal/gitlab_subscriptions/namespaces/" + url.PathEscape(namespaceID)
	var s struct {
		Plan struct {
			Code      string `json:"code"`
			AutoRenew bool   `json:"auto_renew"`
			Trial     bool   `json:"trial"`
		} `json:"plan"`
		Usage struct {
			Seats        int `json:"seats_in_subscription"`
			MaxSeatsUsed int `json:"max_seats_used"`
		} `json:"usage"`
		Billing struct {
			Start string `json:"subscription_start_date"`
			End   string `json:"subscription_end_date"`
		} `json:"billing"`
	}
	if ok, err := c.get(ctx, base+"/gitlab_subscription", &s); !ok || err != nil {
		return Current{}, false, err
	}
	// Null (no value set) reads as 0 or "", which is what "no extras" is.
	var n struct {
		SharedRunnersMinutesLimit        *int    `json:"shared_runners_minutes_limit"`
		ExtraSharedRunnersMinutesLimit   *int    `json:"extra_shared_runners_minutes_limit"`
		AdditionalPurchasedStorageSize   *int    `json:"additional_purchased_storage_size"`
		AdditionalPurchasedStorageEndsOn *string `json:"additional_purchased_storage_ends_on"`
	}
	if ok, err := c.get(ctx, base, &n); !ok || err != nil {
		return Current{}, false, err
	}
	return Current{PlanCode: s.Plan.Code, Seats: s.Usage.Seats, MaxSeatsUsed: s.Usage.MaxSeatsUsed,
		StartDate: s.Billing.Start, EndDate: s.Billing.End, AutoRenew: s.Plan.AutoRenew, Trial: s.Plan.Trial,
		AdditionalPurchasedStorageSize:   deref(n.AdditionalPurchasedStorageSize),
		AdditionalPurchasedStorageEndsOn: deref(n.AdditionalPurchasedStorageEndsOn),
		SharedRunnersMinutesLimit:        deref(n.SharedRunnersMinutesLimit),
		ExtraSharedRunnersMinutesLimit:   deref(n.ExtraSharedRunnersMinutesLimit),
	}, true, nil
}

// get reads one JSON answer into v; ok is false on 404.
func (c *Client) get(ctx context.Context, u string, v any) (ok bool, err error) {
	token, err := c.token(time.Now())
	if err != nil {
		return false, failure.Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, failure.Permanent(failure.Call("gitlab", err))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set(TokenHeader, token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("gitlab.Current: %w", failure.Call("gitlab", err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return false, nil
	case resp.StatusCode/100 != 2:
		return false, fmt.Errorf("gitlab.Current: %w", failure.FromResponse("gitlab", resp, body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return false, fmt.Errorf("gitlab.Current: %w", err)
	}
	return true, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// token signs a fresh short-lived JWT for one request.
func (c *Client) token(now time.Time) (string, error) {
	claims := jwt.RegisteredClaims{
		Issuer:    c.Issuer,
		Subject:   Subject,
		Audience:  jwt.ClaimStrings{Audience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(tokenTTL)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(c.key)
}

func validate(namespaceID string, req ProvisionRequest) error {
	if namespaceID == "" {
		return fmt.Errorf("empty namespace id")
	}
	bp := req.BaseProduct
	if bp.PlanCode == "" {
		return fmt.Errorf("empty plan_code")
	}
	if bp.Seats < 0 || bp.MaxSeatsUsed < 0 {
		return fmt.Errorf("negative seats")
	}
	dates := map[string]string{
		"start_date": bp.StartDate, "end_date": bp.EndDate,
		"trial_starts_on": bp.TrialStartsOn, "trial_ends_on": bp.TrialEndsOn,
	}
	if s := req.Storage; s != nil {
		if s.AdditionalPurchasedStorageSize < 0 {
			return fmt.Errorf("negative additional_purchased_storage_size")
		}
		dates["additional_purchased_storage_ends_on"] = s.AdditionalPurchasedStorageEndsOn
	}
	if m := req.ComputeMinutes; m != nil && (m.SharedRunnersMinutesLimit < 0 || m.ExtraSharedRunnersMinutesLimit < 0) {
		return fmt.Errorf("negative compute minutes")
	}
	for name, d := range dates {
		if d == "" {
			continue
		}
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			return fmt.Errorf("%s %q is not YYYY-MM-DD", name, d)
		}
	}
	return nil
}
