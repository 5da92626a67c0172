package docstoretest

import (
	"time"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/subscription"
)

// The cloud licensing repositories' cases (shared/adapters/store/licensing.go),
// appended here so the list in repositories.go stays as it is.
func init() {
	RepositoryCases = append(RepositoryCases,
		Case{"ActivationCodeIssuedAndCloudLicenseUpdated", cloudLicenses},
		Case{"ActivationAttemptsCountedPerWindow", activationAttempts},
		Case{"SeatReportsRecordedOncePerTargetAndDay", seatReports},
	)
}

func cloudLicenses(t T, db docstore.DB) {
	st := store.New(db)
	seedSub(t, st, "sm", "", nil)
	must(t, st.DB.RunTx(ctx, func(_ ctxT, tx docstore.Tx) error {
		return st.IssueActivationCode(tx, "sm", "hash-1", "prov_key", base)
	}), "issue")
	idx, found, err := st.ActivationCode(ctx, nil, "hash-1")
	must(t, err, "index")
	if !found || idx.SubscriptionID != "sm" || !idx.IssuedAt.Equal(base) {
		t.Errorf("code index %+v found %v", idx, found)
	}
	if _, found, err := st.ActivationCode(ctx, nil, "hash-unknown"); err != nil || found {
		t.Errorf("unknown code: found %v err %v", found, err)
	}
	for range 2 {
		_, err := st.UpdateCloudLicense(ctx, "sm", false, func(s *subscription.Subscription, c *store.CloudLicense) (bool, error) {
			c.InstanceID, c.Serial = "uuid-1", c.Serial+1
			return true, nil
		})
		must(t, err, "update")
	}
	if _, err := st.UpdateCloudLicense(ctx, "sm", false, func(*subscription.Subscription, *store.CloudLicense) (bool, error) {
		return false, nil // writes nothing
	}); err != nil {
		t.Errorf("no-write update: %v", err)
	}
	cl, found, err := st.CloudLicense(ctx, nil, "sm")
	must(t, err, "read")
	if !found || cl.Serial != 2 || cl.InstanceID != "uuid-1" || cl.CodeHash != "hash-1" || cl.CodeEventKey != "prov_key" || !cl.Activated() {
		t.Errorf("cloud license %+v", cl)
	}
	act, err := st.CloudLicensesActivated(ctx)
	must(t, err, "activated")
	if len(act) != 1 || act[0].SubscriptionID != "sm" {
		t.Errorf("activated %+v", act)
	}
	seedSub(t, st, "plain", "", nil)
	if _, err := st.UpdateCloudLicense(ctx, "plain", false, func(*subscription.Subscription, *store.CloudLicense) (bool, error) { return true, nil }); !docstore.IsNotFound(err) {
		t.Errorf("update of an absent cloud license: %v, want ErrNotFound", err)
	}
	created, err := st.UpdateCloudLicense(ctx, "plain", true, func(_ *subscription.Subscription, c *store.CloudLicense) (bool, error) {
		c.Offline = true
		return true, nil
	})
	if err != nil || created.SubscriptionID != "plain" || !created.Offline {
		t.Errorf("created %+v %v", created, err)
	}
}

func activationAttempts(t T, db docstore.DB) {
	st := store.New(db)
	var last int
	for range 3 {
		n, err := st.CountActivationAttempt(ctx, "h", base.Add(10*time.Minute), time.Hour)
		must(t, err, "count")
		last = n
	}
	next, err := st.CountActivationAttempt(ctx, "h", base.Add(70*time.Minute), time.Hour)
	must(t, err, "next window")
	other, err := st.CountActivationAttempt(ctx, "other", base.Add(10*time.Minute), time.Hour)
	must(t, err, "other code")
	if last != 3 || next != 1 || other != 1 {
		t.Errorf("attempts %d, next window %d, other code %d; want 3, 1, 1", last, next, other)
	}
}

func seatReports(t T, db docstore.DB) {
	st := store.New(db)
	o := catalog.Order{PlanCode: "premium", Seats: 10, Deployment: catalog.DeploymentSelfManaged, InstanceID: "i", TermMonths: 12}
	s, _, err := subscription.Purchase("sr", "cs_sr", o, catalog.Customer{}, true, base)
	must(t, err, "purchase")
	must(t, st.DB.Set(ctx, store.Subscriptions, "sr", s), "seed")
	for _, r := range []struct {
		day   string
		users int
	}{{"2026-05-03", 12}, {"2026-05-02", 11}, {"2026-05-04", 14}, {"2026-05-04", 14}, {"2026-04-01", 40}} {
		d, _ := time.Parse(time.DateOnly, r.day)
		_, _, err := st.RecordSeatReport(ctx, "sr", store.SeatReport{Target: "instance:i", Date: r.day, BillableUsers: r.users}, d, base)
		must(t, err, "record "+r.day)
	}
	got, err := st.Subscription(ctx, nil, "sr")
	must(t, err, "read")
	reports, err := store.All[store.SeatReport](ctx, st, docstore.Query{Collection: store.SeatReports})
	must(t, err, "reports")
	if got.MaxSeatsUsed != 14 || got.SeatsOwed != 4 || len(reports) != 4 {
		t.Errorf("max %d owed %d, %d reports; want 14, 4 and 4 (one per day, the one before the term counted for nothing)", got.MaxSeatsUsed, got.SeatsOwed, len(reports))
	}
	// A replay of a day with a lower count leaves the day's kept report.
	d, _ := time.Parse(time.DateOnly, "2026-05-04")
	_, _, err = st.RecordSeatReport(ctx, "sr", store.SeatReport{Target: "instance:i", Date: "2026-05-04", BillableUsers: 2}, d, base.Add(time.Hour))
	must(t, err, "replay")
	var kept store.SeatReport
	must(t, st.DB.Get(ctx, store.SeatReports, "sr_instance-i_2026-05-04", &kept), "kept report")
	if kept.BillableUsers != 14 || !kept.ReceivedAt.Equal(base) {
		t.Errorf("after a lower replay the day's report is %+v; want the first, 14 users", kept)
	}
}
