package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/testsupport/storetest"
)

// trial-extend records who extended the trial, why and by how much, and
// moves its end; a missing reason, an empty who, or an ended trial is
// refused with the trial left as it was.
func TestTrialExtendRecordsWhoAndWhy(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, "ctltrial")
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	for ns, status := range map[string]string{"ns-1": store.TrialActive, "ns-ended": store.TrialEnded} {
		if _, _, err := st.CreateTrial(ctx, store.Trial{NamespaceID: ns, PlanCode: "ultimate", StartsOn: start,
			EndsOn: start.AddDate(0, 0, 30), Status: status, Contact: catalog.Customer{Email: "owner@example.com"}}); err != nil {
			t.Fatal(err)
		}
	}
	at := start.AddDate(0, 0, 20)
	extend := func(args ...string) (store.Trial, error) {
		x, err := parseTrialExtension(args)
		if err != nil {
			return store.Trial{}, err
		}
		return x.apply(ctx, st, at)
	}

	tr, err := extend("-namespace", "ns-1", "-days", "14", "-reason", "ticket 123: evaluation delayed", "-by", "support@example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := store.TrialExtension{By: "support@example.com", Reason: "ticket 123: evaluation delayed", Days: 14,
		From: start.AddDate(0, 0, 30), To: start.AddDate(0, 0, 44), At: at}
	if len(tr.Extensions) != 1 || tr.Extensions[0] != want || !tr.EndsOn.Equal(want.To) || !tr.Unsynced {
		t.Fatalf("trial after the extension = %+v", tr)
	}

	// Without -by, the operator's identity from the environment is recorded.
	t.Setenv("FULFILLCTL_OPERATOR", "oncall@example.com")
	if tr, err = extend("-namespace", "ns-1", "-days", "7", "-reason", "deal 9"); err != nil || tr.Extensions[1].By != "oncall@example.com" {
		t.Fatalf("default who: %+v %v", tr.Extensions, err)
	}

	refused := map[string][]string{
		"no reason":       {"-namespace", "ns-1", "-days", "7"},
		"a blank reason":  {"-namespace", "ns-1", "-days", "7", "-reason", "  "},
		"an empty who":    {"-namespace", "ns-1", "-days", "7", "-reason", "why", "-by", ""},
		"too many days":   {"-namespace", "ns-1", "-days", "91", "-reason", "why"},
		"an ended trial":  {"-namespace", "ns-ended", "-days", "7", "-reason", "why"},
		"an unknown flag": {"-namespace", "ns-1", "-days", "7", "-reason", "why", "-force"},
	}
	for name, args := range refused {
		if _, err := extend(args...); err == nil {
			t.Errorf("%s (%s): accepted", name, strings.Join(args, " "))
		}
	}
	if tr, _, _ := st.Trial(ctx, "ns-1"); len(tr.Extensions) != 2 || !tr.EndsOn.Equal(start.AddDate(0, 0, 51)) {
		t.Fatalf("refused extensions changed the trial: %+v", tr)
	}
}

// trial-extend holds the namespace's lease, as the trial tick does while it
// ends a trial: held by another (a tick ending it), the extension waits,
// then is refused as busy, the trial left as it was.
func TestTrialExtendWaitsForTheNamespacesLease(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, "ctltriallease")
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	if _, _, err := st.CreateTrial(ctx, store.Trial{NamespaceID: "ns-2", PlanCode: "ultimate", StartsOn: start,
		EndsOn: start.AddDate(0, 0, 30), Status: store.TrialActive}); err != nil {
		t.Fatal(err)
	}
	x, err := parseTrialExtension([]string{"-namespace", "ns-2", "-days", "7", "-reason", "deal 9", "-by", "support@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	var during error
	err = consumer.Hold(ctx, st, catalog.NamespaceLeaseOwner, catalog.NamespaceTarget("ns-2"), func(ctx context.Context) error {
		_, during = x.apply(ctx, st, start.AddDate(0, 0, 20))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(during, consumer.ErrBusy) {
		t.Fatalf("extension while the lease was held: %v, want busy", during)
	}
	if tr, _, _ := st.Trial(ctx, "ns-2"); len(tr.Extensions) != 0 || !tr.EndsOn.Equal(start.AddDate(0, 0, 30)) {
		t.Fatalf("trial after the refused extension = %+v, want it unchanged", tr)
	}
	if _, err := x.apply(ctx, st, start.AddDate(0, 0, 20)); err != nil {
		t.Fatalf("extension once the lease is free: %v", err)
	}
}
