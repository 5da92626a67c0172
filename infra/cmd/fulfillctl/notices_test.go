package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/testsupport/storetest"
)

// The operator opts a customer out by subscription and back in by address,
// and reads the choice; what is printed names the contact by its key,
// never by its address, whatever case the address was given in.
func TestNoticesSetsThePreferenceAndNeverPrintsTheAddress(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, "ctl-notices")
	o := catalog.Order{PlanCode: "premium", Seats: 10, Deployment: catalog.DeploymentSaaS, NamespaceID: "42", AutoRenew: true, TermMonths: 12}
	s, _, err := subscription.Purchase("sub-notices", "cs_notices", o, catalog.Customer{Email: "Grace.Hopper@example.com", Name: "Grace"}, true,
		time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DB.Set(ctx, store.Subscriptions, s.ID, s); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		email, sub    string
		optOut, optIn bool
		want          bool
	}{
		{sub: "sub-notices", optOut: true, want: true},
		{email: "grace.hopper@EXAMPLE.com", want: true}, // the same customer, read by address
		{email: "grace.hopper@example.com", optIn: true, want: false},
		{sub: "sub-notices", want: false},
	}
	for i, step := range steps {
		out, err := notePreference(ctx, st, step.email, step.sub, step.optOut, step.optIn)
		if err != nil {
			t.Fatal(err)
		}
		printed, _ := json.Marshal(out)
		if strings.Contains(strings.ToLower(string(printed)), "example.com") || strings.Contains(string(printed), "hopper") {
			t.Fatalf("step %d printed the address: %s", i, printed)
		}
		if out["opt_out_non_essential"] != step.want || out["contact_key"] != store.ContactKey("grace.hopper@example.com") {
			t.Fatalf("step %d printed %s, want opted out %t", i, printed, step.want)
		}
	}
	if _, err := notePreference(ctx, st, "", "sub-missing", true, false); err == nil {
		t.Fatal("an unknown subscription was accepted")
	}
}
