package licensing

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/license"
	"fulfillment/shared/domain/subscription"
)

// keptReport is the audit record of the day's seat link from instance.
func (fx *fixture) keptReport(t *testing.T, subID, instance, day string) (store.SeatReport, bool) {
	t.Helper()
	var r store.SeatReport
	err := fx.st.DB.Get(context.Background(), store.SeatReports, subID+"_instance-"+instance+"_"+day, &r)
	return r, err == nil
}

// TestReplayedAndOldReportsAreNotStored: a replay of a day with a lower
// count leaves the day's kept report as it was, and a day older than
// maxReportAge or before the license's term is answered (200, not counted)
// and stores nothing.
func TestReplayedAndOldReportsAreNotStored(t *testing.T) {
	fx := setup(t, Policy{})
	key := fx.activated(t, "sub-replay", 10, "uuid-replay")
	fx.clock.set(on(t, "2026-01-20"))
	if status, ans, raw := fx.sync(t, key, "uuid-replay", on(t, "2026-01-19"), 12); status != http.StatusOK || !ans.Counted {
		t.Fatalf("first report: %d %s", status, raw)
	}
	first, _ := fx.keptReport(t, "sub-replay", "uuid-replay", "2026-01-19")

	fx.clock.set(on(t, "2026-01-21"))
	if status, ans, raw := fx.sync(t, key, "uuid-replay", on(t, "2026-01-19"), 3); status != http.StatusOK || ans.Counted || ans.MaxSeatsUsed != 12 {
		t.Fatalf("lower replay: %d %s", status, raw)
	}
	if kept, ok := fx.keptReport(t, "sub-replay", "uuid-replay", "2026-01-19"); !ok || kept != first || kept.BillableUsers != 12 {
		t.Fatalf("after a lower replay the day's report is %+v, want %+v", kept, first)
	}

	before := fx.count(t, store.SeatReports)
	for _, c := range []struct{ name, now, day string }{
		{"before the license's term", "2026-01-21", "2026-01-10"},
		{"older than 45 days, in the term", "2026-03-20", "2026-02-01"},
	} {
		fx.clock.set(on(t, c.now))
		if status, ans, raw := fx.sync(t, key, "uuid-replay", on(t, c.day), 40); status != http.StatusOK || ans.Counted || ans.MaxSeatsUsed != 12 {
			t.Fatalf("%s: %d %s; want 200, not counted", c.name, status, raw)
		}
	}
	if n := fx.count(t, store.SeatReports); n != before {
		t.Fatalf("%d seat reports after old days, want %d", n, before)
	}
	// Within the age, a day still counts.
	if status, ans, raw := fx.sync(t, key, "uuid-replay", on(t, "2026-02-20"), 13); status != http.StatusOK || !ans.Counted || ans.MaxSeatsUsed != 13 {
		t.Fatalf("a day 28 days old: %d %s", status, raw)
	}
}

// TestKeysSupersededByARevocationAreRefusedAfterDelivery: after a
// cancellation the keys the revoked license superseded get the revoked
// license for revocationDelivery (so an answer lost on the way reaches the
// instance by GitLab's retries), storing nothing; after that they are refused.
func TestKeysSupersededByARevocationAreRefusedAfterDelivery(t *testing.T) {
	fx := setup(t, Policy{})
	key, revoked := fx.revokedAfterSync(t, "sub-rev", "uuid-rev")
	reports := fx.count(t, store.SeatReports)

	fx.clock.set(fx.clock.Now().Add(revocationDelivery - time.Minute))
	if status, ans, raw := fx.sync(t, key, "uuid-rev", on(t, "2026-02-03"), 12); status != http.StatusOK || ans.License != revoked || ans.Counted {
		t.Fatalf("the old key within the delivery window: %d %s; want the revoked license again", status, raw)
	}
	if n := fx.count(t, store.SeatReports); n != reports {
		t.Fatalf("%d seat reports after the revocation, want %d: a revoked license's reports are not stored", n, reports)
	}

	fx.clock.set(fx.clock.Now().Add(2 * time.Minute))
	if status, _, raw := fx.sync(t, key, "uuid-rev", on(t, "2026-02-04"), 12); status != http.StatusUnprocessableEntity || !strings.Contains(raw, errRevokedKey) {
		t.Fatalf("the old key after the delivery window: %d %s; want 422 %q", status, raw, errRevokedKey)
	}
	if status, _, raw := fx.sync(t, revoked, "uuid-rev", on(t, "2026-02-04"), 12); status != http.StatusUnprocessableEntity {
		t.Fatalf("the revoked key: %d %s", status, raw)
	}
}

// A cloud license revoked before its record kept the status beside the key
// (the key alone says revoked) is still revoked: the keys it superseded are
// refused after the delivery window and their usage is not stored.
func TestALicenseRevokedBeforeItsStatusWasStoredIsRevokedStill(t *testing.T) {
	fx := setup(t, Policy{})
	key, _ := fx.revokedAfterSync(t, "sub-old-rev", "uuid-old-rev")
	ctx := context.Background()
	var rec map[string]any
	if err := fx.st.DB.Get(ctx, store.CloudLicenses, "sub-old-rev", &rec); err != nil {
		t.Fatal(err)
	}
	delete(rec, "status") // as the record was written before the status was kept
	if err := fx.st.DB.Set(ctx, store.CloudLicenses, "sub-old-rev", rec); err != nil {
		t.Fatal(err)
	}
	reports := fx.count(t, store.SeatReports)
	fx.clock.set(fx.clock.Now().Add(revocationDelivery + time.Minute))
	if status, _, raw := fx.sync(t, key, "uuid-old-rev", on(t, "2026-02-04"), 14); status != http.StatusUnprocessableEntity || !strings.Contains(raw, errRevokedKey) {
		t.Fatalf("the superseded key of a license revoked before the status was stored: %d %s; want 422 %q", status, raw, errRevokedKey)
	}
	if n := fx.count(t, store.SeatReports); n != reports {
		t.Fatalf("%d seat reports, want %d", n, reports)
	}
}

// revokedAfterSync activates a 10-seat subscription from instance, cancels
// it on 2026-02-01 after a refund, and syncs once: it returns the key the
// instance held and the revoked license that sync answered.
func (fx *fixture) revokedAfterSync(t *testing.T, id, instance string) (key, revoked string) {
	t.Helper()
	key = fx.activated(t, id, 10, instance)
	fx.clock.set(on(t, "2026-02-01"))
	fx.change(t, id, "cancel", func(s *subscription.Subscription) subscription.Change {
		return s.Cancel(fx.clock.Now(), "refunded")
	})
	status, ans, raw := fx.sync(t, key, instance, on(t, "2026-01-31"), 12)
	if status != http.StatusOK || ans.License == "" || fx.verify(t, ans.License).Status != license.StatusRevoked {
		t.Fatalf("first sync after the cancellation: %d %s", status, raw)
	}
	return key, ans.License
}
