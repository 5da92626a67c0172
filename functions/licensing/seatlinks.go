package licensing

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/license"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/httpbody"
)

// SeatLink is the body of POST /api/v1/seat_links, as GitLab's
// Gitlab::SeatLinkData#as_json sends it. Older GitLab versions send date and
// active_users instead of billable_users_count; unknown fields are ignored.
type SeatLink struct {
	GitLabVersion          string          `json:"gitlab_version"`
	Timestamp              string          `json:"timestamp"`
	Date                   string          `json:"date,omitempty"`
	LicenseKey             string          `json:"license_key"`
	MaxHistoricalUserCount *int            `json:"max_historical_user_count"`
	BillableUsersCount     *int            `json:"billable_users_count,omitempty"`
	ActiveUsers            *int            `json:"active_users,omitempty"`
	Hostname               string          `json:"hostname"`
	InstanceID             string          `json:"instance_id"`
	UniqueInstanceID       string          `json:"unique_instance_id,omitempty"`
	AddOnMetrics           json.RawMessage `json:"add_on_metrics,omitempty"`
}

// SeatLinkAnswer is the 200 answer, with the fields GitLab's worker reads:
// license (only when the license changed since the key sent),
// next_reconciliation_date and display_alert_from (both absent when no
// reconciliation is due this term), future_subscriptions.
type SeatLinkAnswer struct {
	Success                bool     `json:"success"`
	License                string   `json:"license,omitempty"`
	NextReconciliationDate string   `json:"next_reconciliation_date,omitempty"`
	DisplayAlertFrom       string   `json:"display_alert_from,omitempty"`
	FutureSubscriptions    []string `json:"future_subscriptions"`
	// Ours, for the console and tests: what the report did.
	SubscriptionID string `json:"subscription_id"`
	MaxSeatsUsed   int    `json:"max_seats_used"`
	SeatsOwed      int    `json:"seats_owed"`
	Counted        bool   `json:"counted"`
}

// alertLead is how long before a reconciliation the instance shows its alert.
const alertLead = 7 * 24 * time.Hour

// usage is one day's figures, from a seat link or a usage file line.
type usage struct {
	date               time.Time
	billable, maxUsers int
	// uncounted: the link carries no user count (GitLab sends
	// billable_users_count: null when the instance has no historical data
	// yet). It is still a sync; there is nothing to count.
	uncounted bool
}

// parse checks a seat link and returns the day it counts for. Errors are 400s.
func (s SeatLink) parse(now time.Time) (usage, error) {
	if s.LicenseKey == "" {
		return usage{}, errors.New("license_key is required")
	}
	users := s.BillableUsersCount
	if users == nil {
		users = s.ActiveUsers
	}
	u := usage{uncounted: users == nil}
	if users != nil {
		u.billable = *users
	}
	if s.MaxHistoricalUserCount != nil {
		u.maxUsers = *s.MaxHistoricalUserCount
	}
	if u.billable < 0 || u.billable > catalog.MaxSeats || u.maxUsers < 0 || u.maxUsers > catalog.MaxSeats {
		return usage{}, fmt.Errorf("user counts must be within 0..%d", catalog.MaxSeats)
	}
	var err error
	switch {
	case s.Date != "":
		u.date, err = time.Parse(time.DateOnly, s.Date)
		if err != nil {
			return usage{}, fmt.Errorf("date %q is not YYYY-MM-DD", s.Date)
		}
	case s.Timestamp != "":
		ts, perr := time.Parse(time.RFC3339, s.Timestamp)
		if perr != nil {
			return usage{}, fmt.Errorf("timestamp %q is not ISO 8601", s.Timestamp)
		}
		// The day the instance counted, in its own offset.
		u.date, _ = time.Parse(time.DateOnly, ts.Format(time.DateOnly))
	default:
		return usage{}, errors.New("timestamp (or date) is required")
	}
	if u.date.Year() < 2000 || u.date.After(now.Add(36*time.Hour)) {
		return usage{}, fmt.Errorf("report day %s is not plausible", u.date.Format(time.DateOnly))
	}
	return u, nil
}

// serveSeatLink answers POST /api/v1/seat_links: 400 for a body it cannot
// read, 413 oversized, 422 for a license key that is not ours, not current
// for its instance, or revoked (GitLab's worker treats every non-2xx as a
// failure and raises with the body's errors), 503 when storage fails
// (GitLab retries), 200 otherwise.
func (f *Function) serveSeatLink(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(w, http.StatusMethodNotAllowed, map[string]any{"success": false, "errors": "POST only"})
		return
	}
	now := f.d.Clock.Now()
	// Before reading the body: a flood costs no decoding and no store read.
	if !f.linkIPs.allow(clientIP(r, f.d.Policy.forwarding()), now) {
		tooManyReply(w, tooMany{msg: errTooManyLinks, retryAfter: untilWindowEnd(now, f.d.Policy.SeatLinksPerIPWindow)})
		return
	}
	body, err := httpbody.Read(w, r, maxBody)
	if err != nil {
		reply(w, http.StatusRequestEntityTooLarge, map[string]any{"success": false, "errors": "body too large or unreadable"})
		return
	}
	var link SeatLink
	if err := json.Unmarshal(body, &link); err != nil {
		reply(w, http.StatusBadRequest, map[string]any{"success": false, "errors": "malformed seat link: " + err.Error()})
		return
	}
	u, err := link.parse(now)
	if err != nil {
		reply(w, http.StatusBadRequest, map[string]any{"success": false, "errors": err.Error()})
		return
	}
	ans, err := f.sync(ctx, link, u, now)
	var limited tooMany
	if errors.As(err, &limited) {
		f.d.Logger.WarnContext(ctx, "seat link limited", "reason", limited.msg, "instance_id", link.InstanceID)
		tooManyReply(w, limited)
		return
	}
	if msg, ok := asRefusal(err); ok {
		f.d.Logger.WarnContext(ctx, "seat link refused", "reason", msg, "instance_id", link.InstanceID)
		reply(w, http.StatusUnprocessableEntity, map[string]any{"success": false, "errors": msg})
		return
	}
	if err != nil {
		f.d.Logger.ErrorContext(ctx, "seat link not stored", "error", err.Error())
		reply(w, http.StatusServiceUnavailable, map[string]any{"success": false, "errors": "temporarily unavailable"})
		return
	}
	f.d.Logger.InfoContext(ctx, "seat link", "subscription_id", ans.SubscriptionID, "users", u.billable,
		"date", u.date.Format(time.DateOnly), "max_seats_used", ans.MaxSeatsUsed, "new_license", ans.License != "")
	reply(w, http.StatusOK, ans)
}

// Refusals of a seat link (422), and its limits (429).
const (
	errUnknownKey      = "license key is not valid"
	errRevokedKey      = "license has been revoked"
	errNotActivated    = "license is not activated for this instance"
	errTooManyLinks    = "too many seat links from this address; try again later"
	errTooManyLicensed = "too many seat links for this license; try again later"
)

// tooManyReply answers 429 with Retry-After. GitLab's worker treats it as
// any failure and retries on its own backoff; other clients can wait.
func tooManyReply(w http.ResponseWriter, t tooMany) {
	w.Header().Set("Retry-After", t.seconds())
	reply(w, http.StatusTooManyRequests, map[string]any{"success": false, "errors": t.msg})
}

// untilWindowEnd is how long until the fixed window holding now ends.
func untilWindowEnd(now time.Time, window time.Duration) time.Duration {
	return now.Truncate(window).Add(window).Sub(now)
}

// countLink counts a seat link of a verified license against the
// per-license limit, before anything of it is stored; keys that are not
// ours never get this far, so they create no counters.
func (f *Function) countLink(ctx context.Context, subscriptionID string, now time.Time) error {
	p := f.d.Policy
	n, err := f.d.Store.CountSeatLink(ctx, subscriptionID, now, p.SeatLinksPerLicenseWindow)
	if err != nil {
		return err
	}
	if n > p.SeatLinksPerLicense {
		return tooMany{msg: errTooManyLicensed, retryAfter: untilWindowEnd(now, p.SeatLinksPerLicenseWindow)}
	}
	return nil
}

// revocationDelivery is how long after a license was revoked the keys it
// superseded still get the revoked license (200) rather than a refusal: an
// answer lost on the way is then delivered by GitLab's retries (about two
// days), and the instance learns it was revoked. After it they are refused.
const revocationDelivery = 72 * time.Hour

// credential checks a key: signed by us, of a subscription with a cloud
// license, for the instance bound to it, not revoked (nor superseded by a
// revocation longer than revocationDelivery ago), and not newer than the
// newest issued (a forged serial).
func (f *Function) credential(ctx context.Context, key, instanceID string, now time.Time) (license.License, store.CloudLicense, error) {
	lic, err := license.VerifyKey(key, f.d.SigningKey.Public().(ed25519.PublicKey))
	if err != nil {
		return license.License{}, store.CloudLicense{}, refuse(errUnknownKey)
	}
	cl, found, err := f.d.Store.CloudLicense(ctx, nil, lic.SubscriptionID)
	cl.Status = f.storedStatus(cl)
	switch {
	case err != nil:
		return license.License{}, store.CloudLicense{}, err
	case !found || lic.Serial == 0 || lic.Serial > cl.Serial:
		return license.License{}, store.CloudLicense{}, refuse(errUnknownKey)
	case lic.Status == license.StatusRevoked,
		lic.Serial < cl.Serial && cl.Status == license.StatusRevoked && now.Sub(cl.IssuedAt) > revocationDelivery:
		return license.License{}, store.CloudLicense{}, refuse(errRevokedKey)
	case !cl.Activated() || lic.InstanceID != cl.InstanceID || (instanceID != "" && instanceID != cl.InstanceID):
		return license.License{}, store.CloudLicense{}, refuse(errNotActivated)
	}
	return lic, cl, nil
}

// storedStatus is the status of the newest license issued. A record
// written before the status was kept beside the key has it only in the key,
// so it is read from there: a license revoked then is revoked still.
func (f *Function) storedStatus(cl store.CloudLicense) string {
	if cl.Status != "" || cl.Key == "" {
		return cl.Status
	}
	l, err := license.VerifyKey(cl.Key, f.d.SigningKey.Public().(ed25519.PublicKey))
	if err != nil {
		return ""
	}
	return l.Status
}

// sync applies one seat link: the license brought up to date and the sync
// time first, so that a revocation is known before anything is stored, then
// the day's usage through the shared seat report path.
func (f *Function) sync(ctx context.Context, link SeatLink, u usage, now time.Time) (SeatLinkAnswer, error) {
	lic, cl, err := f.credential(ctx, link.LicenseKey, link.InstanceID, now)
	if err != nil {
		return SeatLinkAnswer{}, err
	}
	if err := f.countLink(ctx, cl.SubscriptionID, now); err != nil {
		return SeatLinkAnswer{}, err
	}
	cl, err = f.d.Store.UpdateCloudLicense(ctx, cl.SubscriptionID, false, func(sub *subscription.Subscription, c *store.CloudLicense) (bool, error) {
		if now.After(c.LastSyncAt) {
			c.LastSyncAt = now
		}
		if printable(link.Hostname, 255) {
			c.Hostname = link.Hostname
		}
		if printable(link.GitLabVersion, 64) {
			c.GitLabVersion = link.GitLabVersion
		}
		_, err := Refresh(sub, c, f.d.SigningKey, now)
		return true, err
	})
	if err != nil {
		return SeatLinkAnswer{}, err
	}
	sub, counted, err := f.recordLink(ctx, lic, cl, u, now)
	if err != nil {
		return SeatLinkAnswer{}, err
	}
	ans := SeatLinkAnswer{Success: true, FutureSubscriptions: []string{}, SubscriptionID: sub.ID,
		MaxSeatsUsed: sub.MaxSeatsUsed, SeatsOwed: sub.SeatsOwed, Counted: counted}
	if lic.Serial < cl.Serial {
		ans.License = cl.Key
	}
	if at, ok := nextReconciliation(sub); ok {
		ans.NextReconciliationDate = at.Format(time.DateOnly)
		ans.DisplayAlertFrom = at.Add(-alertLead).Format(time.DateOnly)
	}
	return ans, nil
}

// maxReportAge is how old a seat link's day may be and still be stored.
// GitLab's worker sends the current day and retries a failed link for about
// two days; an older day is a replay (an air-gapped instance's history comes
// by the usage file instead). Without it one key could write a document for
// every day since 2000.
const maxReportAge = 45 * 24 * time.Hour

// recordLink stores and counts the day's usage, unless it is not to be
// stored (unstorable): then it answers with the subscription as it is.
func (f *Function) recordLink(ctx context.Context, lic license.License, cl store.CloudLicense, u usage, now time.Time) (*subscription.Subscription, bool, error) {
	if why := unstorable(lic, cl, u, now); why != "" {
		f.d.Logger.InfoContext(ctx, "seat link not stored", "reason", why, "subscription_id", cl.SubscriptionID, "date", u.date.Format(time.DateOnly))
		sub, err := f.d.Store.Subscription(ctx, nil, cl.SubscriptionID)
		return sub, false, err
	}
	sub, c, err := record(ctx, f.d.Store, cl, u, now)
	return sub, !c.NoOp, err
}

// unstorable says why a verified seat link's day is answered but not
// stored: it has no user count, the license is revoked (nothing it reports
// can count), the day is older than maxReportAge, or it is before the term
// of the license sent.
func unstorable(lic license.License, cl store.CloudLicense, u usage, now time.Time) string {
	day := u.date.Format(time.DateOnly)
	switch {
	case u.uncounted:
		return "the link carries no user count"
	case cl.Status == license.StatusRevoked:
		return "the license is revoked"
	case u.date.Before(now.Add(-maxReportAge)):
		return "the day is older than " + maxReportAge.String()
	case lic.StartsOn != "" && day < lic.StartsOn:
		return "the day is before the license's term"
	}
	return ""
}

// record feeds one day's usage to the subscription (store.RecordSeatReport,
// seat-usage's path too).
func record(ctx context.Context, st *store.Store, cl store.CloudLicense, u usage, now time.Time) (*subscription.Subscription, subscription.Change, error) {
	return st.RecordSeatReport(ctx, cl.SubscriptionID, store.SeatReport{
		Target: catalog.InstanceTarget(cl.InstanceID), Date: u.date.Format(time.DateOnly), BillableUsers: u.billable, MaxHistoricalUsers: u.maxUsers,
	}, u.date, now)
}

// nextReconciliation is the day of the next quarterly reconciliation (its
// notice, or the true-up invoice of a quarter noticed), from the
// subscription's own schedule.
func nextReconciliation(sub *subscription.Subscription) (time.Time, bool) {
	for _, st := range sub.Steps(subscription.DefaultPolicy()) {
		if st.Action == subscription.ActReconNotice || st.Action == subscription.ActTrueUp {
			return st.At, true
		}
	}
	return time.Time{}, false
}
