package license

import (
	"testing"
	"time"

	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/idempotency"
	"fulfillment/shared/domain/ledger"
	"fulfillment/shared/domain/subscription"
)

// A cloud license grants the packs the current term holds, as provisioning
// grants them on GitLab.com: the checkout's storage and minutes, a pack paid
// mid-term, and, once renewed, what the renewal was charged for, not a pack
// bought for the rest of the old term after the renewal was quoted.
func TestALicenseGrantsThePacksItsTermHolds(t *testing.T) {
	at := time.Date(2026, 1, 10, 9, 0, 0, 0, time.UTC)
	o := catalog.Order{PlanCode: "premium", Seats: 5, Deployment: catalog.DeploymentSelfManaged, InstanceID: "inst-1",
		StorageGB: 40, ComputeMinutes: 2000, AutoRenew: true, TermMonths: 12}
	s, _, err := subscription.Purchase("sub-1", "cs_1", o, catalog.Customer{}, true, at)
	if err != nil {
		t.Fatal(err)
	}
	wantAddOns := func(when string, storageGB, minutes int) {
		t.Helper()
		if got := ForSubscription(s, "inst-1", "").AddOns; got != (AddOns{StorageGB: storageGB, ComputeMinutes: minutes}) {
			t.Fatalf("%s: the license grants %d GB and %d minutes; want %d GB and %d minutes (the order holds %d GB, %d minutes)",
				when, got.StorageGB, got.ComputeMinutes, storageGB, minutes, s.Order.StorageGB, s.Order.ComputeMinutes)
		}
	}
	wantAddOns("bought", 40, 2000)

	end := s.TermEnd
	quoted := end.Add(-7 * 24 * time.Hour)
	renewal := idempotency.Renewal(s.ID, end)
	if _, err := s.QuoteRenewal(renewal, quoted); err != nil {
		t.Fatal(err)
	}
	s.MarkRenewalPending("in_renew", quoted)
	s.ChargeSent(renewal, "in_renew", false, quoted)
	if _, err := s.Quote("change-pack", subscription.Addition{Kind: ledger.Pack, PackKind: subscription.PackCompute, PackAmount: 1000}, quoted.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	s.ChargeSent("change-pack", "in_pack", false, quoted.Add(time.Hour))
	if c := s.ApplyChargeOutcome("change-pack", "in_pack", ledger.Paid, 0, quoted.Add(time.Hour)); c.NoOp {
		t.Fatalf("the pack was not granted: %s", c.Reason)
	}
	wantAddOns("a pack paid after the renewal was quoted", 40, 3000)

	if c := s.ApplyInvoicePaid(end, end.Add(-6*24*time.Hour)); c.NoOp || !s.TermStart.Equal(end) {
		t.Fatalf("the renewal was not applied: %s", c.Reason)
	}
	wantAddOns("renewed", 40, 2000)
}
