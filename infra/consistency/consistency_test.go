package consistency

import (
	"testing"
	"time"

	crmpush "fulfillment/functions/crm-push"
	"fulfillment/functions/provisioning"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/ledger"
	"fulfillment/shared/domain/subscription"
)

func sub(status subscription.Status) subscription.Subscription {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return subscription.Subscription{
		ID: "sub-1", Status: status, Version: 4, PurchaseID: "cs_1", TermStart: start, TermEnd: start.AddDate(1, 0, 0),
		Order: catalog.Order{PlanCode: "premium", Seats: 5, Deployment: catalog.DeploymentSaaS, NamespaceID: "ns-1", TermMonths: 12},
	}
}

func TestCompare(t *testing.T) {
	active := sub(subscription.Active)
	applied := provisioning.Plan(active.Snapshot(""))
	synced := &crmpush.Synced{SubscriptionID: "sub-1", Status: "active"}
	canceled := sub(subscription.Canceled)
	stale := applied
	stale.Seats = 3
	failed := applied
	failed.Status = provisioning.EntitlementFailed
	tests := []struct {
		name   string
		sub    subscription.Subscription
		ent    *provisioning.Entitlement
		synced *crmpush.Synced
		want   []string // "target field"
	}{
		{"in step", active, &applied, synced, nil},
		{"past due keeps the entitlement", sub(subscription.PastDue), &applied, &crmpush.Synced{Status: "past_due"}, nil},
		{"never provisioned nor synced", active, nil, nil, []string{"provisioning entitlement", "crm status"}},
		{"older seats applied", active, &stale, synced, []string{"provisioning seats"}},
		{"provisioning failed", active, &failed, synced, []string{"provisioning status"}},
		{"canceled but still entitled", canceled, &applied, &crmpush.Synced{Status: "canceled"}, []string{"provisioning status", "provisioning plan_code", "provisioning seats"}},
		{"pending announced to nobody", sub(subscription.Pending), nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compare(tt.sub, tt.ent, tt.synced)
			if len(got) != len(tt.want) {
				t.Fatalf("drifts %v, want %v", got, tt.want)
			}
			for i, d := range got {
				if d.Target+" "+d.Field != tt.want[i] {
					t.Errorf("drift %d = %s, want %s", i, d, tt.want[i])
				}
			}
		})
	}
}

func TestGrantsNotCoveredByPaymentAreDrifts(t *testing.T) {
	s := subscription.Subscription{ID: "s", Status: subscription.Active}
	s.Ledger = ledger.Ledger{
		{Key: "paid", Kind: ledger.Seats, Outcome: ledger.Paid, Granted: true},
		{Key: "declined", Kind: ledger.Seats, Outcome: ledger.Failed, Granted: true},
		{Key: "refunded-back", Kind: ledger.Pack, Outcome: ledger.Refunded, Granted: true, Revoked: true},
	}
	var got []string
	for _, d := range Compare(s, nil, nil) {
		if d.Target == "ledger" {
			got = append(got, d.Field)
		}
	}
	if len(got) != 1 || got[0] != "declined" {
		t.Fatalf("ledger drifts %v, want only the declined line granted", got)
	}
}

// Two subscriptions holding one namespace (bought while the first was
// suspended, before checkout refused it) are a drift for each; an ended
// one beside a running one, or one per namespace, is none.
func TestATargetHeldTwiceIsADrift(t *testing.T) {
	suspended, bought, ended, elsewhere := sub(subscription.Suspended), sub(subscription.Active), sub(subscription.Canceled), sub(subscription.Active)
	bought.ID, ended.ID, elsewhere.ID = "sub-2", "sub-0", "sub-3"
	elsewhere.Order.NamespaceID = "ns-2"
	got := SharedTargets(map[string]subscription.Subscription{"sub-1": suspended, "sub-2": bought, "sub-0": ended, "sub-3": elsewhere})
	if len(got) != 2 || got[0].Target != "gitlab" || got[0].Got != "sub-1, sub-2" || got[0].Field != "subscriptions of namespace:ns-1" {
		t.Fatalf("drifts %v, want one for each of sub-1 and sub-2 on namespace:ns-1", got)
	}
	if got := SharedTargets(map[string]subscription.Subscription{"sub-0": ended, "sub-2": bought, "sub-3": elsewhere}); len(got) != 0 {
		t.Fatalf("drifts %v for an ended subscription beside a running one, want none", got)
	}
}
