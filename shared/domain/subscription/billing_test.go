package subscription

import (
	"testing"
	"time"

	"fulfillment/shared/domain/catalog"
)

// A downgrade asked for between the renewal charge and its payment waits
// for the term after: the paid term runs on what was charged.
func TestADowngradeAskedAfterTheRenewalChargeIsKeptForTheNextTerm(t *testing.T) {
	at := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	s, _, err := Purchase("s", "cs", catalog.Order{PlanCode: "ultimate", Seats: 5, Deployment: catalog.DeploymentSaaS, NamespaceID: "n", AutoRenew: true, TermMonths: 12},
		catalog.Customer{ProviderCustomerID: "cus"}, true, at)
	if err != nil {
		t.Fatal(err)
	}
	charge := s.TermEnd.AddDate(0, 0, -7)
	if _, err := s.QuoteRenewal("renewal-key", charge); err != nil {
		t.Fatal(err)
	}
	s.MarkRenewalPending("in_1", charge)
	if _, err := s.ChangePlan("premium", charge.Add(time.Hour)); err != nil || s.PendingPlan != "premium" {
		t.Fatalf("downgrade: %v, pending %q", err, s.PendingPlan)
	}
	if c := s.ApplyInvoicePaid(s.TermEnd, charge.Add(2*time.Hour)); c.NoOp {
		t.Fatalf("renewal not applied: %s", c.Reason)
	}
	if s.Order.PlanCode != "ultimate" || s.PendingPlan != "premium" {
		t.Fatalf("after the paid renewal: plan %s, pending %q; want ultimate (what was charged), premium pending for the next term", s.Order.PlanCode, s.PendingPlan)
	}
}
