package testdouble

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// GitLabAdminToken is the admin personal access token the GitLab double
// accepts on PUT /api/v4/internal/upcoming_reconciliations.
const GitLabAdminToken = "glpat-test-admin-token"

// UpcomingReconciliation is what the double keeps per namespace, as GitLab's
// UpcomingReconciliations::UpdateService upserts it.
type UpcomingReconciliation struct {
	NamespaceID            int64
	NextReconciliationDate string
	DisplayAlertFrom       string
}

// UpcomingReconciliation returns what the namespace holds.
func (g *GitLab) UpcomingReconciliation(namespaceID int64) (UpcomingReconciliation, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.reconciliations[namespaceID]
	return r, ok
}

// upcomingReconciliations answers PUT /api/v4/internal/upcoming_reconciliations
// as ee/lib/api/internal/upcoming_reconciliations.rb does: an admin token
// (authenticated_as_admin!, 401 without one), then the params block: a
// required array upcoming_reconciliations, each entry requiring an Integer
// namespace_id and two Dates; an invalid body is Grape's 400.
func (g *GitLab) upcomingReconciliations(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("PRIVATE-TOKEN") != GitLabAdminToken {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "401 Unauthorized"})
		return
	}
	var body struct {
		Entries []map[string]any `json:"upcoming_reconciliations"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil || body.Entries == nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "upcoming_reconciliations is missing"})
		return
	}
	var got []UpcomingReconciliation
	for i, e := range body.Entries {
		rec, err := validateReconciliation(e)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("upcoming_reconciliations[%d][%s]", i, err)})
			return
		}
		got = append(got, rec)
	}
	g.mu.Lock()
	for _, rec := range got {
		g.reconciliations[rec.NamespaceID] = rec
	}
	g.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func validateReconciliation(e map[string]any) (UpcomingReconciliation, error) {
	f, ok := e["namespace_id"].(float64)
	if !ok || f != float64(int64(f)) || f <= 0 {
		return UpcomingReconciliation{}, fmt.Errorf("namespace_id] is invalid")
	}
	rec := UpcomingReconciliation{NamespaceID: int64(f)}
	for k, dst := range map[string]*string{"next_reconciliation_date": &rec.NextReconciliationDate, "display_alert_from": &rec.DisplayAlertFrom} {
		s, ok := e[k].(string)
		if !ok {
			return UpcomingReconciliation{}, fmt.Errorf("%s] is missing", k)
		}
		if _, err := time.Parse(time.DateOnly, s); err != nil {
			return UpcomingReconciliation{}, fmt.Errorf("%s] is invalid", k)
		}
		*dst = s
	}
	return rec, nil
}
