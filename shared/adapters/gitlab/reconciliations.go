package gitlab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"fulfillment/shared/runtime/failure"
)

// UpcomingReconciliation is one entry of
// PUT /api/v4/internal/upcoming_reconciliations
// (gitlab-org/gitlab ee/lib/api/internal/upcoming_reconciliations.rb):
// namespace_id an Integer, the two dates YYYY-MM-DD. GitLab shows its
// reconciliation banner in the namespace from DisplayAlertFrom.
type UpcomingReconciliation struct {
	NamespaceID            int64  `json:"namespace_id"`
	NextReconciliationDate string `json:"next_reconciliation_date"`
	DisplayAlertFrom       string `json:"display_alert_from"`
}

// AdminTokenHeader carries the admin personal access token: that endpoint
// is authenticated_as_admin!, not by the subscriptions JWT.
const AdminTokenHeader = "PRIVATE-TOKEN"

// Notices sends in-app notices through GitLab's admin-only internal API.
type Notices struct {
	baseURL string
	token   string
	hc      *http.Client
}

// NewNotices returns a client for baseURL authenticating with an admin token.
func NewNotices(baseURL, adminToken string, hc *http.Client) *Notices {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &Notices{baseURL: strings.TrimRight(baseURL, "/"), token: adminToken, hc: hc}
}

// PutUpcomingReconciliations upserts the entries (GitLab's
// UpcomingReconciliations::UpdateService upserts by namespace, so a repeat
// is harmless). 400/401/403/404 are permanent; network errors, 408, 429 and
// 5xx transient.
func (n *Notices) PutUpcomingReconciliations(ctx context.Context, entries []UpcomingReconciliation) error {
	for _, e := range entries {
		if e.NamespaceID <= 0 {
			return failure.Permanentf("gitlab.PutUpcomingReconciliations: namespace id %d", e.NamespaceID)
		}
		for _, d := range []string{e.NextReconciliationDate, e.DisplayAlertFrom} {
			if _, err := time.Parse(time.DateOnly, d); err != nil {
				return failure.Permanentf("gitlab.PutUpcomingReconciliations: date %q is not YYYY-MM-DD", d)
			}
		}
	}
	body, err := json.Marshal(map[string]any{"upcoming_reconciliations": entries})
	if err != nil {
		return failure.Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, n.baseURL+"/api/v4/internal/upcoming_reconciliations", bytes.NewReader(body))
	if err != nil {
		return failure.Permanent(failure.Call("gitlab", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set(AdminTokenHeader, n.token)
	resp, err := n.hc.Do(req)
	if err != nil {
		return fmt.Errorf("gitlab.PutUpcomingReconciliations: %w", failure.Call("gitlab", err))
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("gitlab.PutUpcomingReconciliations: %w", failure.FromResponse("gitlab", resp, respBody))
	}
	return nil
}
