package licensing

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/license"
	"fulfillment/shared/domain/subscription"
)

// TestCloudLicensingJourney drives the issue's journey through the real
// handlers (provisioning's activation code, licensing's GraphQL and seat
// link endpoints) on the store under test: purchase self-managed with 10
// seats, activate, a second instance refused, daily syncs rising to 14 (one
// late, one repeated), the quarterly true-up from the synced figures, the
// license with the trued-up seats on the next sync, renewal and the new
// term's license, then a refund's cancellation and the revoked license.
func TestCloudLicensingJourney(t *testing.T) {
	fx := setup(t, Policy{})
	code := fx.purchase(t, "sub-sm", 10)

	// Activate, as GitLab's admin area does.
	status, a := fx.activate(t, code, "uuid-instance-A")
	got := a.Data.CloudActivationActivate
	if status != http.StatusOK || len(got.Errors) != 0 || got.LicenseKey == nil || len(a.Errors) != 0 {
		t.Fatalf("activation: %d %+v", status, a)
	}
	key := *got.LicenseKey
	l := fx.verify(t, key)
	if l.SubscriptionID != "sub-sm" || l.Seats != 10 || l.InstanceID != "uuid-instance-A" || l.UniqueInstanceID != "uniq-uuid-instance-A" ||
		l.Status != license.StatusActive || !l.Cloud || l.Serial != 1 {
		t.Fatalf("activated license %+v", l)
	}
	if got.NewSubscription == nil || !*got.NewSubscription {
		t.Fatalf("first activation: newSubscription %v, want true", got.NewSubscription)
	}
	// Repeated by the same instance: the same license, not new, one announcement id.
	_, again := fx.activate(t, code, "uuid-instance-A")
	if rep := again.Data.CloudActivationActivate; rep.LicenseKey == nil || *rep.LicenseKey != key || rep.NewSubscription == nil || *rep.NewSubscription {
		t.Fatalf("repeated activation: %+v", again)
	}
	ids := map[string]bool{}
	for _, e := range fx.rec.On(catalog.TopicSubscriptionEvents) {
		if e.Type() == catalog.LicenseActivated {
			ids[e.ID()] = true
		}
	}
	if len(ids) != 1 {
		t.Fatalf("license.activated ids %v, want one", ids)
	}
	// A second instance with the same code is refused.
	if _, other := fx.activate(t, code, "uuid-instance-B"); other.Data.CloudActivationActivate.LicenseKey != nil ||
		len(other.Data.CloudActivationActivate.Errors) != 1 || other.Data.CloudActivationActivate.Errors[0] != errUsedElsewhere {
		t.Fatalf("second instance: %+v", other)
	}

	// Daily syncs rising to 14: 11, 12, 13, then the peak of 14 arrives late,
	// for a day before the last one reported, and counts; its repeat does not.
	for _, r := range []struct {
		day     string
		users   int
		counted bool
		max     int
	}{{"2026-01-16", 11, true, 11}, {"2026-01-17", 12, true, 12}, {"2026-01-19", 13, true, 13}, {"2026-01-18", 14, true, 14}, {"2026-01-18", 14, false, 14}} {
		if at := on(t, r.day).Add(2 * 24 * time.Hour); at.After(fx.clock.Now()) {
			fx.clock.set(at) // each arrives a couple of days later; the clock never goes back
		}
		status, ans, raw := fx.sync(t, key, "uuid-instance-A", on(t, r.day), r.users)
		if status != http.StatusOK || ans.License != "" || ans.Counted != r.counted || ans.MaxSeatsUsed != r.max {
			t.Fatalf("sync %s of %d: %d %s; want counted %v, max %d", r.day, r.users, status, raw, r.counted, r.max)
		}
		if ans.NextReconciliationDate != "2026-04-15" || ans.DisplayAlertFrom != "2026-04-08" {
			t.Fatalf("reconciliation dates %q %q", ans.NextReconciliationDate, ans.DisplayAlertFrom)
		}
	}
	s := fx.sub(t, "sub-sm")
	if s.MaxSeatsUsed != 14 || s.SeatsOwed != 4 {
		t.Fatalf("max seats used %d, owed %d; want 14 and 4", s.MaxSeatsUsed, s.SeatsOwed)
	}

	// The quarterly reconciliation bills the synced overage (what renewal runs).
	q1 := on(t, "2026-04-15")
	fx.clock.set(q1)
	var cents int64
	fx.change(t, "sub-sm", "recon-q1", func(s *subscription.Subscription) subscription.Change { return s.NoticeReconciliation(1, q1) })
	fx.change(t, "sub-sm", "trueup-q1", func(s *subscription.Subscription) subscription.Change {
		if s.ReviseTrueUp() != 4 {
			t.Errorf("true-up seats %d, want 4", s.Reconciliation.Seats)
		}
		cents = s.TrueUpCents(q1)
		return s.ApplyTrueUp("in_trueup", q1)
	})
	if want := fx.sub(t, "sub-sm").SeatsCents(4, q1); cents != want || cents <= 0 {
		t.Fatalf("true-up billed %d cents, want %d (4 seats for the rest of the term)", cents, want)
	}
	// The next sync carries the license with the trued-up seats.
	fx.clock.set(q1.Add(24 * 60 * 60 * 1e9))
	status, ans, raw := fx.sync(t, key, "uuid-instance-A", q1, 14)
	if status != http.StatusOK || ans.License == "" {
		t.Fatalf("sync after true-up: %d %s", status, raw)
	}
	trued := fx.verify(t, ans.License)
	if trued.Seats != 14 || trued.Serial != 2 || trued.ExpiresOn != "2027-01-15" {
		t.Fatalf("trued-up license %+v", trued)
	}
	key = ans.License
	if _, ans, _ := fx.sync(t, key, "uuid-instance-A", q1, 14); ans.License != "" {
		t.Fatalf("the current key got a license again: %+v", ans)
	}

	// Renewal to a new term: the next sync returns the new term's license.
	renewedAt := on(t, "2027-01-15")
	fx.change(t, "sub-sm", "renewal", func(s *subscription.Subscription) subscription.Change {
		s.MarkRenewalPending("in_renewal", renewedAt)
		return s.ApplyInvoicePaid(s.TermEnd, renewedAt)
	})
	fx.clock.set(renewedAt.Add(3600e9))
	status, ans, raw = fx.sync(t, key, "uuid-instance-A", renewedAt, 14)
	if status != http.StatusOK || ans.License == "" {
		t.Fatalf("sync after renewal: %d %s", status, raw)
	}
	renewed := fx.verify(t, ans.License)
	if renewed.StartsOn != "2027-01-15" || renewed.ExpiresOn != "2028-01-15" || renewed.Serial != 3 || renewed.Seats != 14 {
		t.Fatalf("renewed license %+v", renewed)
	}
	key = ans.License

	// A refund cancels the subscription: the next sync returns the revoked
	// license, and the revoked key is refused from then on.
	fx.change(t, "sub-sm", "refund", func(s *subscription.Subscription) subscription.Change {
		return s.Cancel(renewedAt.Add(7200e9), "refunded")
	})
	status, ans, raw = fx.sync(t, key, "uuid-instance-A", renewedAt, 14)
	if status != http.StatusOK || ans.License == "" {
		t.Fatalf("sync after refund: %d %s", status, raw)
	}
	revoked := fx.verify(t, ans.License)
	if revoked.Status != license.StatusRevoked || revoked.Seats != 0 || revoked.PlanCode != "free" || revoked.Serial != 4 {
		t.Fatalf("revoked license %+v", revoked)
	}
	if status, _, raw := fx.sync(t, ans.License, "uuid-instance-A", renewedAt, 14); status != http.StatusUnprocessableEntity || !strings.Contains(raw, errRevokedKey) {
		t.Fatalf("sync with the revoked key: %d %s", status, raw)
	}
	// An ended subscription's code activates nothing.
	if _, a := fx.activate(t, code, "uuid-instance-A"); len(a.Data.CloudActivationActivate.Errors) != 1 || a.Data.CloudActivationActivate.Errors[0] != errEnded {
		t.Fatalf("activation after refund: %+v", a)
	}
}

// TestOfflineLicenseAndUsageFileReconcileLikeSyncs: an air-gapped
// subscription gets an offline license for the term, and its usage file
// (the same days as the synced journey, one repeated, one late) gives the
// same max seats used and seats owed.
func TestOfflineLicenseAndUsageFileReconcileLikeSyncs(t *testing.T) {
	fx := setup(t, Policy{})
	fx.purchase(t, "sub-air", 10)
	off, err := IssueOffline(context.Background(), fx.st, fx.key, "sub-air", "air-gapped-1", fx.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	l := fx.verify(t, off.LicenseKey)
	if !l.Offline || l.Cloud || l.Seats != 10 || l.InstanceID != "air-gapped-1" || l.ExpiresOn != "2027-01-15" {
		t.Fatalf("offline license %+v", l)
	}
	file := `License Key,` + "\"" + off.LicenseKey[:12] + "...\"" + `
Company,Ada's
Date,Billable User Count,Max Users
2026-01-16,11,11
2026-01-17,12,12
2026-01-19,14,14
2026-01-18,13,14
2026-01-19,14,14
`
	days, err := ParseUsageFile(strings.NewReader(file))
	if err != nil || len(days) != 5 {
		t.Fatalf("parsed %d days: %v", len(days), err)
	}
	fx.clock.set(on(t, "2026-01-25"))
	res, err := ImportUsage(context.Background(), fx.st, "sub-air", days, fx.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.MaxSeatsUsed != 14 || res.SeatsOwed != 4 || res.Days != 5 || res.Counted != 3 {
		t.Fatalf("import %+v", res)
	}
	again, err := ImportUsage(context.Background(), fx.st, "sub-air", days, fx.clock.Now())
	if err != nil || again.Counted != 0 || again.MaxSeatsUsed != 14 {
		t.Fatalf("re-import %+v %v", again, err)
	}
	if s := fx.sub(t, "sub-air"); s.MaxSeatsUsed != 14 || s.SeatsOwed != 4 || s.TrueUpSeats() != 0 {
		t.Fatalf("subscription after import: max %d owed %d", s.MaxSeatsUsed, s.SeatsOwed)
	}
	// An offline instance is never announced overdue.
	fx.clock.set(on(t, "2026-04-01"))
	if res, err := fx.f.CheckSync(context.Background()); err != nil || res.Checked != 0 || len(res.Overdue) != 0 {
		t.Fatalf("sync check %+v %v", res, err)
	}
}

// TestStrictSyncAnnouncesOverdueOnceAndEndsAutoRenewAfterGrace.
func TestStrictSyncAnnouncesOverdueOnceAndEndsAutoRenewAfterGrace(t *testing.T) {
	fx := setup(t, Policy{OverdueDays: 7, GraceDays: 30})
	key := fx.activated(t, "sub-quiet", 10, "uuid-quiet")
	start := fx.clock.Now()

	fx.clock.set(start.Add(6 * 24 * 3600e9))
	if res, _ := fx.f.CheckSync(context.Background()); len(res.Overdue) != 0 || res.Checked != 1 {
		t.Fatalf("6 days: %+v", res)
	}
	fx.clock.set(start.Add(8 * 24 * 3600e9))
	for range 2 { // the second check announces nothing new
		if res, err := fx.f.CheckSync(context.Background()); err != nil || len(res.GraceEnded) != 0 {
			t.Fatalf("8 days: %+v %v", res, err)
		}
	}
	if n := fx.published(catalog.TopicSubscriptionEvents, catalog.LicenseOverdue); n != 1 {
		t.Fatalf("sync_overdue published %d times, want 1", n)
	}
	// A sync ends the silence; the next silence is counted afresh.
	fx.sync(t, key, "uuid-quiet", fx.clock.Now(), 3)
	synced := fx.clock.Now()
	fx.clock.set(synced.Add(36 * 24 * 3600e9))
	res, _ := fx.f.CheckSync(context.Background())
	if len(res.Overdue) != 1 || len(res.GraceEnded) != 0 || fx.published(catalog.TopicRenewalTicks, catalog.CommandSetAutoRenew) != 0 {
		t.Fatalf("36 days after the sync: %+v", res)
	}
	fx.clock.set(synced.Add(38 * 24 * 3600e9))
	res, _ = fx.f.CheckSync(context.Background())
	fx.f.CheckSync(context.Background())
	if len(res.GraceEnded) != 1 {
		t.Fatalf("38 days after the sync: %+v", res)
	}
	cmds := fx.rec.On(catalog.TopicRenewalTicks)
	if len(cmds) != 1 || cmds[0].Type() != catalog.CommandSetAutoRenew || cmds[0].Subject() != "sub-quiet" {
		t.Fatalf("commands %+v", cmds)
	}
	var c catalog.Command
	if err := cmds[0].DataAs(&c); err != nil || c.AutoRenew || c.SubscriptionID != "sub-quiet" {
		t.Fatalf("command %+v %v", c, err)
	}
	var overdue catalog.LicenseSyncOverdue
	for _, e := range fx.rec.On(catalog.TopicSubscriptionEvents) {
		if e.Type() == catalog.LicenseOverdue {
			_ = e.DataAs(&overdue)
		}
	}
	if overdue.InstanceID != "uuid-quiet" || overdue.DaysSinceSync != 36 || !overdue.LastSyncAt.Equal(synced) || overdue.Customer.Email != "admin@example.com" {
		t.Fatalf("overdue %+v", overdue)
	}
}

// TestEveryLicenseChangeReachesTheNextSync: each change of what a
// subscription grants (seats added outside a true-up, a plan change, a
// storage pack, a suspension after an unpaid renewal, and paying again)
// reaches the instance with its next seat link as a license of the next
// serial saying so; the sync after it, with the new key, carries none.
func TestEveryLicenseChangeReachesTheNextSync(t *testing.T) {
	fx := setup(t, Policy{})
	key := fx.activated(t, "sub-chg", 10, "uuid-chg")
	serial := fx.verify(t, key).Serial
	must := func(c subscription.Change, err error) subscription.Change {
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, step := range []struct {
		name, day string
		change    func(s *subscription.Subscription, at time.Time) subscription.Change
		status    string
		plan      string
		seats     int
		storageGB int
	}{
		{"seats added", "2026-02-01", func(s *subscription.Subscription, at time.Time) subscription.Change {
			return must(s.AddSeats(4, at))
		}, license.StatusActive, "premium", 14, 0},
		{"plan upgraded", "2026-03-01", func(s *subscription.Subscription, at time.Time) subscription.Change {
			return must(s.ChangePlan("ultimate", at))
		}, license.StatusActive, "ultimate", 14, 0},
		{"storage pack", "2026-04-01", func(s *subscription.Subscription, at time.Time) subscription.Change {
			return must(s.AddPack("pack-1", subscription.PackStorage, 10, at))
		}, license.StatusActive, "ultimate", 14, 10},
		{"renewal unpaid, suspended", "2027-01-08", func(s *subscription.Subscription, at time.Time) subscription.Change {
			s.MarkRenewalPending("in_renewal", at)
			s.ApplyPaymentFailed(s.TermEnd, at, "in_renewal")
			s.EnterGrace(at)
			return s.Suspend(at)
		}, license.StatusSuspended, "free", 0, 0},
		{"paid again", "2027-01-16", func(s *subscription.Subscription, at time.Time) subscription.Change {
			return s.ApplyInvoicePaid(s.TermEnd, at)
		}, license.StatusActive, "ultimate", 14, -1}, // -1: the new term's packs are renewal's business
	} {
		at := on(t, step.day)
		fx.clock.set(at)
		fx.change(t, "sub-chg", step.name, func(s *subscription.Subscription) subscription.Change {
			c := step.change(s, at)
			if c.NoOp {
				t.Fatalf("%s: the subscription took no change: %s", step.name, c.Reason)
			}
			return c
		})
		fx.clock.set(at.Add(time.Hour))
		status, ans, raw := fx.sync(t, key, "uuid-chg", at, 3)
		if status != http.StatusOK || ans.License == "" {
			t.Fatalf("%s: the next sync %d %s carries no license", step.name, status, raw)
		}
		l := fx.verify(t, ans.License)
		if l.Serial != serial+1 || l.Status != step.status || l.PlanCode != step.plan || l.Seats != step.seats ||
			(step.storageGB >= 0 && l.AddOns.StorageGB != step.storageGB) {
			t.Fatalf("%s: license %+v; want serial %d, %s, %s, %d seats, %d GB", step.name, l, serial+1, step.status, step.plan, step.seats, step.storageGB)
		}
		key, serial = ans.License, l.Serial
		if _, again, raw := fx.sync(t, key, "uuid-chg", at, 3); again.License != "" {
			t.Fatalf("%s: the sync with the new key carries a license again: %s", step.name, raw)
		}
	}
}
