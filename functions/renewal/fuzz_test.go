package renewal

import (
	"context"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/testsupport/fuzzing"
)

// FuzzHandle feeds arbitrary event data to the function: no input may panic
// it. Ticks, fan-out pages, renewal-due events and every operator command
// find sub-1 (the id the shared seeds name) as bought at t0, stored afresh
// before each input, on a clock in the charge lead, so due events run their
// steps and commands are priced and charged.
func FuzzHandle(f *testing.F) {
	fx := setup(f, options{})
	fx.clock.Set(day("2027-01-08"))
	o := catalog.Order{PlanCode: "premium", Seats: 10, Deployment: catalog.DeploymentSaaS, NamespaceID: "ns-sub-1", AutoRenew: true, TermMonths: 12}
	sub, _, err := subscription.Purchase("sub-1", "cs_sub-1", o, catalog.Customer{ProviderCustomerID: "cus_sub-1"}, true, t0)
	if err != nil {
		f.Fatal(err)
	}
	types := []string{cloudevent.PubSubMessagePublished, "dev.knative.sources.ping", catalog.RenewalFanOutPage, catalog.RenewalDue,
		catalog.CommandAddSeats, catalog.CommandChangePlan, catalog.CommandAddPack, catalog.CommandSetAutoRenew}
	fuzzing.Events(f, types, func(ctx context.Context, e event.Event) error {
		if err := fx.st.DB.Set(ctx, store.Subscriptions, sub.ID, sub); err != nil {
			panic("storing sub-1: " + err.Error()) // not the function's doing, but no input may go untested
		}
		return fx.f.Handle(ctx, e)
	})
}
