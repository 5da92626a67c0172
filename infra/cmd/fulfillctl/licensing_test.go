package main

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"testing"
	"time"

	"fulfillment/functions/provisioning"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/license"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/testsupport/storetest"
)

func TestMain(m *testing.M) { storetest.RunTests(m) }

// TestShowRevealsTheActivationCodeOnce: the operator sees the plaintext
// code the first time, from provisioning's recorded event; never again.
func TestShowRevealsTheActivationCodeOnce(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, "ctl")
	at := time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)
	o := catalog.Order{PlanCode: "premium", Seats: 10, Deployment: catalog.DeploymentSelfManaged, InstanceID: "i-1", AutoRenew: true, TermMonths: 12}
	s, _, err := subscription.Purchase("sub-ctl", "cs_ctl", o, catalog.Customer{}, true, at)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DB.Set(ctx, store.Subscriptions, s.ID, s); err != nil {
		t.Fatal(err)
	}
	rec := &pubsub.Recorder{}
	prov := provisioning.New(provisioning.Deps{Store: st, Publisher: rec, LicenseKey: ed25519.NewKeyFromSeed(make([]byte, 32)), Logger: slog.New(slog.DiscardHandler), DeadLetterTopic: "dl"})
	e, _ := cloudevent.New(ctx, "act-ctl", catalog.SourcePaymentResult, catalog.SubscriptionActivated, s.ID, s.Snapshot(""))
	if err := prov.Handle(ctx, e); err != nil {
		t.Fatal(err)
	}
	first, err := revealCode(ctx, st, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := first["activation_code"].(string)
	cl, _, _ := st.CloudLicense(ctx, nil, s.ID)
	if !license.WellFormedCode(code) || license.HashCode(nil, code) != cl.CodeHash || !cl.CodeShown {
		t.Fatalf("first show %+v; stored %+v", first, cl)
	}
	second, err := revealCode(ctx, st, s.ID)
	if err != nil || second["activation_code"] == code {
		t.Fatalf("second show %+v %v", second, err)
	}
	if none, err := revealCode(ctx, st, "sub-without"); none != nil || err != nil {
		t.Fatalf("subscription without a code: %+v %v", none, err)
	}
}
