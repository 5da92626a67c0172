package provisioning

import (
	"context"
	"testing"

	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/license"
	"fulfillment/shared/runtime/cloudevent"
)

// codesIssued decodes the activation codes announced on subscription-events.
func codesIssued(t *testing.T, fx fixture) []catalog.ActivationCodeIssued {
	t.Helper()
	var out []catalog.ActivationCodeIssued
	for _, e := range fx.rec.On(catalog.TopicSubscriptionEvents) {
		if e.Type() != catalog.LicenseActivationCodeIssued {
			continue
		}
		var c catalog.ActivationCodeIssued
		if err := cloudevent.DecodeData(e, &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func TestSelfManagedPurchaseIssuesOneHashedActivationCode(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	act := subscriptionEvent(t, "act-code", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSelfManaged))
	fx.handle(t, act)
	fx.handle(t, act) // a redelivery re-publishes the recorded event, draws no new code
	renewed := snapshot("active", 2, catalog.DeploymentSelfManaged)
	fx.handle(t, subscriptionEvent(t, "ren-code", catalog.SubscriptionRenewed, renewed))

	codes := codesIssued(t, fx)
	if len(codes) != 2 || codes[0] != codes[1] {
		t.Fatalf("codes announced %+v, want the one code twice (delivery and redelivery)", codes)
	}
	c := codes[0]
	if !license.WellFormedCode(c.ActivationCode) || c.SubscriptionID != "sub-cs_1" || c.Seats != 10 || c.PlanCode != "premium" {
		t.Fatalf("announced %+v", c)
	}
	cl, found, err := fx.st.CloudLicense(context.Background(), nil, "sub-cs_1")
	if err != nil || !found {
		t.Fatalf("cloud license found=%v err=%v", found, err)
	}
	if cl.CodeHash != license.HashCode(nil, c.ActivationCode) || cl.CodeHash == c.ActivationCode || cl.CodeEventKey == "" {
		t.Fatalf("stored %+v", cl)
	}
	idx, found, err := fx.st.ActivationCode(context.Background(), nil, cl.CodeHash)
	if err != nil || !found || idx.SubscriptionID != "sub-cs_1" {
		t.Fatalf("code index %+v found=%v err=%v", idx, found, err)
	}
	// The plaintext is kept only in the outgoing event of the dedupe record.
	rec, found, err := fx.st.Processed(context.Background(), nil, cl.CodeEventKey)
	if err != nil || !found || len(rec.Outgoing) != 2 {
		t.Fatalf("dedupe record %+v found=%v err=%v", rec, found, err)
	}
}

func TestSaaSPurchaseIssuesNoActivationCode(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	fx.handle(t, subscriptionEvent(t, "act-saas", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSaaS)))
	if codes := codesIssued(t, fx); len(codes) != 0 {
		t.Fatalf("SaaS subscription got codes %+v", codes)
	}
	if _, found, _ := fx.st.CloudLicense(context.Background(), nil, "sub-cs_1"); found {
		t.Fatal("SaaS subscription got a cloud license")
	}
}

// A stale self-managed event (its version behind what was applied, here a
// revocation that drew no code) records nothing, and so draws no code: a
// canceled subscription must not get an activation code from an old event.
func TestAStaleSelfManagedEventIssuesNoActivationCode(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	ctx := context.Background()
	revoked := Plan(snapshot("canceled", 2, catalog.DeploymentSelfManaged))
	if err := fx.st.RunTx(ctx, func(_ context.Context, tx store.Tx) error { return fx.st.SaveEntitlement(tx, revoked) }); err != nil {
		t.Fatal(err)
	}
	fx.handle(t, subscriptionEvent(t, "act-stale", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSelfManaged)))
	if codes := codesIssued(t, fx); len(codes) != 0 {
		t.Fatalf("codes announced %+v for a stale event, want none", codes)
	}
	if _, found, _ := fx.st.CloudLicense(ctx, nil, "sub-cs_1"); found {
		t.Fatal("a stale event kept an activation code")
	}
	if e := fx.entitlement(t, "sub-cs_1"); e.Version != 2 || e.Status != EntitlementRevoked {
		t.Errorf("entitlement = %+v, want the revocation of version 2 kept", e)
	}
}
