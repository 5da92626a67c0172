package gitlab_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"fulfillment/shared/adapters/gitlab"
	"fulfillment/shared/runtime/failure"
	"fulfillment/shared/testsupport/testdouble"
)

func TestUpcomingReconciliationsReachGitLabInItsWireFormat(t *testing.T) {
	t.Parallel()
	g, err := testdouble.StartGitLab("127.0.0.1:0", []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	ctx := context.Background()
	entry := gitlab.UpcomingReconciliation{NamespaceID: 4242, NextReconciliationDate: "2026-04-22", DisplayAlertFrom: "2026-04-15"}
	if err := gitlab.NewNotices(g.URL(), testdouble.GitLabAdminToken, nil).PutUpcomingReconciliations(ctx, []gitlab.UpcomingReconciliation{entry}); err != nil {
		t.Fatal(err)
	}
	got, ok := g.UpcomingReconciliation(4242)
	if !ok || got != (testdouble.UpcomingReconciliation{NamespaceID: 4242, NextReconciliationDate: "2026-04-22", DisplayAlertFrom: "2026-04-15"}) {
		t.Fatalf("GitLab holds %+v %t", got, ok)
	}
	calls := g.Calls()
	if last := calls[len(calls)-1]; last.Method != "PUT" || last.Path != "/api/v4/internal/upcoming_reconciliations" || last.Status != 200 {
		t.Fatalf("call %+v", last)
	}
	// Without the admin token GitLab answers 401: permanent.
	err = gitlab.NewNotices(g.URL(), "wrong", nil).PutUpcomingReconciliations(ctx, []gitlab.UpcomingReconciliation{entry})
	if err == nil || !failure.IsPermanent(err) {
		t.Fatalf("wrong token: %v", err)
	}
	// A bad date is refused before the call.
	bad := entry
	bad.DisplayAlertFrom = "15/04/2026"
	if err := gitlab.NewNotices(g.URL(), testdouble.GitLabAdminToken, nil).PutUpcomingReconciliations(ctx, []gitlab.UpcomingReconciliation{bad}); err == nil || !failure.IsPermanent(err) {
		t.Fatalf("bad date: %v", err)
	}
}

// The double refuses what GitLab's params block refuses.
func TestTheGitLabDoubleRefusesAnotherWireFormat(t *testing.T) {
	t.Parallel()
	g, err := testdouble.StartGitLab("127.0.0.1:0", []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	for _, body := range []string{
		`{"upcoming_reconciliations": [{"namespace_id": "ns-1", "next_reconciliation_date": "2026-04-22", "display_alert_from": "2026-04-15"}]}`,
		`{"upcoming_reconciliations": [{"namespace_id": 7, "next_reconciliation_date": "2026-04-22"}]}`,
		`{"upcoming_reconciliations": [{"namespace_id": 7, "next_reconciliation_date": "22/04/2026", "display_alert_from": "2026-04-15"}]}`,
		`{"namespace_id": 7}`,
	} {
		req, _ := http.NewRequest(http.MethodPut, g.URL()+"/api/v4/internal/upcoming_reconciliations", strings.NewReader(body))
		req.Header.Set("PRIVATE-TOKEN", testdouble.GitLabAdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: answered %d, want 400", body, resp.StatusCode)
		}
	}
	if _, ok := g.UpcomingReconciliation(7); ok {
		t.Fatal("a refused body was kept")
	}
}
