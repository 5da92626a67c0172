// Package seatusage takes the daily seat reports of GitLab.com namespaces
// (the shape of GitLab's seat link, with namespace_id) and keeps each
// subscription's max_seats_used and seats_owed for its current term.
// Reports may arrive late, twice or out of order: the term's maximum does not
// depend on their order, and a report dated outside the current term counts
// for nothing. Each namespace authenticates with a bearer token derived from
// a signing key (Token), so no token table is needed.
// Self-managed instances do not report here: GitLab's instances sync through
// the licensing function's seat links, with their license key as the
// credential (docs/licensing.md), and an air-gapped one's usage file is
// imported by fulfillctl import-usage. Both record reports through
// store.RecordSeatReport, as this function does.
package seatusage

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/clock"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/httpbody"
)

// Name is the function's name in logs, FUNCTION_TARGET and deployments.
const Name = "seat-usage"

// SeatReports keeps every report received, one per target and date.
const SeatReports = store.SeatReports

// maxBody caps a report; a seat link is a few hundred bytes.
const maxBody = 64 << 10

// Report is a namespace's daily seat report, in the fields of GitLab's seat
// link with namespace_id. InstanceID is read only to refuse it clearly.
type Report struct {
	Date                   string `json:"date"`
	NamespaceID            string `json:"namespace_id,omitempty"`
	InstanceID             string `json:"instance_id,omitempty"`
	BillableUsersCount     int    `json:"billable_users_count"`
	MaxHistoricalUserCount int    `json:"max_historical_user_count"`
}

// target names who reports: "namespace:ID".
func (r Report) target() string { return catalog.NamespaceTarget(r.NamespaceID) }

// Token is the bearer token of a target ("namespace:ID"): an HMAC of the
// target under the signing key.
func Token(key []byte, target string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(target))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Deps are what seat-usage needs.
type Deps struct {
	Store    *store.Store
	TokenKey []byte
	Clock    clock.Clock
	Logger   *slog.Logger
	Close    func() error
}

// Function is seat-usage.
type Function struct{ d Deps }

// New returns seat-usage.
func New(d Deps) *Function {
	if d.Clock == nil {
		d.Clock = clock.System{}
	}
	return &Function{d: d}
}

// Close releases the clients.
func (f *Function) Close() error {
	if f.d.Close == nil {
		return nil
	}
	return f.d.Close()
}

// Answer is the reply to an accepted report.
type Answer struct {
	SubscriptionID string `json:"subscription_id"`
	MaxSeatsUsed   int    `json:"max_seats_used"`
	SeatsOwed      int    `json:"seats_owed"`
	Counted        bool   `json:"counted"`
	Reason         string `json:"reason"`
}

// ServeHTTP takes one report: 401 for a missing or wrong token, 400 for a
// report it cannot read, 404 when no running subscription covers the
// target, 503 when storage fails (the reporter retries), 200 otherwise.
func (f *Function) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		reply(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST only"})
		return
	}
	body, err := httpbody.Read(w, r, maxBody)
	if err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"error": "unreadable or oversized body"})
		return
	}
	var rep Report
	date, err := decode(body, &rep)
	if err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	if !f.authorized(r, rep.target()) {
		f.d.Logger.WarnContext(ctx, "seat report refused: bad token", "target", rep.target())
		reply(w, http.StatusUnauthorized, map[string]string{"error": "invalid token for " + rep.target()})
		return
	}
	ans, err := f.record(ctx, rep, date)
	switch {
	case errors.Is(err, store.ErrNotFound):
		reply(w, http.StatusNotFound, map[string]string{"error": "no running subscription for " + rep.target()})
	case err != nil:
		f.d.Logger.ErrorContext(ctx, "seat report not stored", "target", rep.target(), "error", err.Error())
		reply(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily unavailable"})
	default:
		f.d.Logger.InfoContext(ctx, "seat report", "target", rep.target(), "date", rep.Date, "users", rep.BillableUsersCount,
			"subscription_id", ans.SubscriptionID, "max_seats_used", ans.MaxSeatsUsed, "counted", ans.Counted)
		reply(w, http.StatusOK, ans)
	}
}

// instanceRefusal answers an instance's report: an instance's usage counts
// only when its license key vouches for it.
const instanceRefusal = "self-managed instances report through POST /api/v1/seat_links of the licensing function, " +
	"with their license key (an air-gapped one's usage file: fulfillctl import-usage)"

func decode(body []byte, rep *Report) (time.Time, error) {
	if err := json.Unmarshal(body, rep); err != nil {
		return time.Time{}, fmt.Errorf("malformed report: %w", err)
	}
	if rep.InstanceID != "" {
		return time.Time{}, errors.New(instanceRefusal)
	}
	if rep.NamespaceID == "" {
		return time.Time{}, errors.New("a report names its namespace_id")
	}
	if rep.BillableUsersCount < 0 || rep.MaxHistoricalUserCount < 0 ||
		rep.BillableUsersCount > catalog.MaxSeats || rep.MaxHistoricalUserCount > catalog.MaxSeats {
		return time.Time{}, fmt.Errorf("user counts must be within 0..%d", catalog.MaxSeats)
	}
	date, err := time.Parse(time.DateOnly, rep.Date)
	if err != nil {
		return time.Time{}, fmt.Errorf("date %q is not YYYY-MM-DD", rep.Date)
	}
	return date, nil
}

func (f *Function) authorized(r *http.Request, target string) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && hmac.Equal([]byte(token), []byte(Token(f.d.TokenKey, target)))
}

// record finds the running subscription of the target and applies the
// report (store.RecordSeatReport, shared with the licensing function's seat
// links), with the report kept for audit.
func (f *Function) record(ctx context.Context, rep Report, date time.Time) (Answer, error) {
	id, err := f.subscriptionOf(ctx, rep)
	if err != nil {
		return Answer{}, err
	}
	sub, c, err := f.d.Store.RecordSeatReport(ctx, id, store.SeatReport{
		Target: rep.target(), Date: rep.Date, BillableUsers: rep.BillableUsersCount, MaxHistoricalUsers: rep.MaxHistoricalUserCount,
	}, date, f.d.Clock.Now())
	if err != nil {
		return Answer{}, err
	}
	return Answer{SubscriptionID: id, MaxSeatsUsed: sub.MaxSeatsUsed, SeatsOwed: sub.SeatsOwed, Counted: !c.NoOp, Reason: c.Reason}, nil
}

// subscriptionOf finds the running subscription for a namespace.
func (f *Function) subscriptionOf(ctx context.Context, rep Report) (string, error) {
	subs, err := f.d.Store.SubscriptionsWhere(ctx, "order.namespace_id", rep.NamespaceID)
	if err != nil {
		return "", fmt.Errorf("seatusage.subscriptionOf: %w", err)
	}
	var found *subscription.Subscription
	for _, s := range subs {
		if running(s.Status) && (found == nil || s.TermStart.After(found.TermStart)) {
			found = &s
		}
	}
	if found == nil {
		return "", fmt.Errorf("seatusage: %s: %w", rep.target(), store.ErrNotFound)
	}
	return found.ID, nil
}

func running(s subscription.Status) bool {
	switch s {
	case subscription.Active, subscription.PastDue, subscription.Grace, subscription.Suspended:
		return true
	}
	return false
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
