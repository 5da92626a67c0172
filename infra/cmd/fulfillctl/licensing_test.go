package main

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fulfillment/functions/provisioning"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/clock"
	"fulfillment/shared/domain/license"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/testsupport/gitlabinstance"
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

// TestOfflineLicenseAndUsageImportCommands runs offline-license and
// import-usage as the operator does: the license file written with -out
// verifies with the signing key and is offline for the term; GitLab's
// exported usage file of that license feeds the subscription's figures,
// and the same file is refused for another subscription.
func TestOfflineLicenseAndUsageImportCommands(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, "ctl-offline")
	at := time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)
	clockFile := filepath.Join(t.TempDir(), "clock")
	if err := clock.Set(clockFile, at); err != nil {
		t.Fatal(err)
	}
	t.Setenv(clock.FileEnv, clockFile)
	t.Setenv("LICENSE_SIGNING_KEY", "")
	for _, id := range []string{"sub-air", "sub-other"} {
		o := catalog.Order{PlanCode: "premium", Seats: 10, Deployment: catalog.DeploymentSelfManaged, InstanceID: "i-" + id, AutoRenew: true, TermMonths: 12}
		s, _, err := subscription.Purchase(id, "cs_"+id, o, catalog.Customer{Email: "admin@example.com"}, true, at)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.DB.Set(ctx, store.Subscriptions, id, s); err != nil {
			t.Fatal(err)
		}
	}

	out := filepath.Join(t.TempDir(), "license.gitlab-license")
	off, err := issueOfflineLicense(ctx, st, offlineRequest{sub: "sub-air", instance: "uuid-air", out: out})
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := signingKey()
	l, err := license.VerifyKey(strings.TrimSpace(string(file)), key.Public().(ed25519.PublicKey))
	if err != nil || !l.Offline || l.Cloud || l.InstanceID != "uuid-air" || l.SubscriptionID != "sub-air" || l.ExpiresOn != "2027-01-15" || l.Seats != 10 {
		t.Fatalf("license file: %+v %v", l, err)
	}
	if off.Serial != l.Serial || !strings.Contains(off.LicenseKey, out) {
		t.Fatalf("printed %+v; want the serial and the file named, not the key", off)
	}

	ts := func(s string) time.Time { v, _ := time.Parse(time.DateTime, s); return v }
	usage := filepath.Join(t.TempDir(), "usage.csv")
	export := gitlabinstance.UsageExport(gitlabinstance.UsageLicense{Key: strings.TrimSpace(string(file)), StartsAt: at, ExpiresAt: at.AddDate(1, 0, 0)}, ts("2026-02-01 12:00:00"),
		gitlabinstance.UsageCount{RecordedAt: ts("2026-01-20 01:00:00"), Users: 11}, gitlabinstance.UsageCount{RecordedAt: ts("2026-01-21 01:00:00"), Users: 13})
	if err := os.WriteFile(usage, export, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := clock.Set(clockFile, ts("2026-02-01 12:00:00")); err != nil {
		t.Fatal(err)
	}
	if _, err := importUsageFile(ctx, st, "sub-other", usage); err == nil || !strings.Contains(err.Error(), "sub-air") {
		t.Fatalf("sub-air's file imported into sub-other: %v", err)
	}
	res, err := importUsageFile(ctx, st, "sub-air", usage)
	if err != nil || res.Days != 2 || res.Counted != 2 || res.MaxSeatsUsed != 13 || res.SeatsOwed != 3 {
		t.Fatalf("import %+v %v; want 2 days counted, 13 used, 3 owed", res, err)
	}
	cl, _, _ := st.CloudLicense(ctx, nil, "sub-air")
	if other, _ := st.Subscription(ctx, nil, "sub-other"); other.MaxSeatsUsed != 0 || !cl.Offline || !cl.LastSyncAt.Equal(ts("2026-02-01 12:00:00")) {
		t.Fatalf("after the import: sub-other max %d; cloud license %+v", other.MaxSeatsUsed, cl)
	}
}
