// Package consistency compares what Firestore says each subscription is with
// what provisioning and crm-push last acknowledged having applied (the
// entitlements and crm_sync collections), and lists every drift. The
// operator CLI runs it (`fulfillctl consistency`), and so does the
// fault-injection suite after it converges.
package consistency

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	crmpush "fulfillment/functions/crm-push"
	"fulfillment/functions/provisioning"
	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/subscription"
)

// Drift is one disagreement between a subscription and a target.
type Drift struct {
	SubscriptionID string `json:"subscription_id"`
	Target         string `json:"target"` // provisioning or crm
	Field          string `json:"field"`
	Want           string `json:"want"`
	Got            string `json:"got"`
}

func (d Drift) String() string {
	return fmt.Sprintf("%s %s %s: want %q, got %q", d.SubscriptionID, d.Target, d.Field, d.Want, d.Got)
}

// Report is the outcome of one check.
type Report struct {
	Subscriptions int     `json:"subscriptions"`
	Drifts        []Drift `json:"drifts"`
}

// Check reads every subscription, entitlement and CRM sync record and
// compares them.
func Check(ctx context.Context, st *store.Store) (Report, error) {
	subs, err := all[subscription.Subscription](ctx, st, store.Subscriptions)
	if err != nil {
		return Report{}, err
	}
	ents, err := all[provisioning.Entitlement](ctx, st, store.Entitlements)
	if err != nil {
		return Report{}, err
	}
	synced, err := all[crmpush.Synced](ctx, st, store.CRMSync)
	if err != nil {
		return Report{}, err
	}
	r := Report{Subscriptions: len(subs)}
	for id, sub := range subs {
		r.Drifts = append(r.Drifts, Compare(sub, lookup(ents, id), lookup(synced, id))...)
	}
	for id := range ents {
		if _, ok := subs[id]; !ok {
			r.Drifts = append(r.Drifts, Drift{SubscriptionID: id, Target: "provisioning", Field: "subscription", Want: "exists", Got: "missing"})
		}
	}
	for id := range synced {
		if _, ok := subs[id]; !ok {
			r.Drifts = append(r.Drifts, Drift{SubscriptionID: id, Target: "crm", Field: "subscription", Want: "exists", Got: "missing"})
		}
	}
	r.Drifts = append(r.Drifts, SharedTargets(subs)...)
	sort.Slice(r.Drifts, func(i, j int) bool { return r.Drifts[i].String() < r.Drifts[j].String() })
	return r, nil
}

// SharedTargets lists the namespaces and instances that more than one
// subscription holds (running, or suspended: a payment restores it), one
// drift per such subscription. checkout refuses a second purchase for such a
// target; one bought before it did is billed twice, and whichever version
// provisioning applied last is what GitLab holds.
func SharedTargets(subs map[string]subscription.Subscription) []Drift {
	holders := map[string][]string{}
	for id, s := range subs {
		switch s.Status {
		case subscription.Pending, subscription.Active, subscription.PastDue, subscription.Grace, subscription.Suspended:
			t := provisioning.Plan(s.Snapshot("")).Target
			holders[t] = append(holders[t], id)
		}
	}
	var out []Drift
	for t, ids := range holders {
		if len(ids) < 2 {
			continue
		}
		sort.Strings(ids)
		for _, id := range ids {
			out = append(out, Drift{SubscriptionID: id, Target: "gitlab", Field: "subscriptions of " + t, Want: "one", Got: strings.Join(ids, ", ")})
		}
	}
	return out
}

// Compare lists how one subscription's entitlement and CRM record (nil when
// absent) differ from what its state calls for. A pending subscription has
// been announced to neither.
func Compare(sub subscription.Subscription, ent *provisioning.Entitlement, synced *crmpush.Synced) []Drift {
	var out []Drift
	add := func(target, field, want, got string) {
		if want != got {
			out = append(out, Drift{SubscriptionID: sub.ID, Target: target, Field: field, Want: want, Got: got})
		}
	}
	if sub.Status == subscription.Pending {
		if ent != nil {
			add("provisioning", "entitlement", "none", string(ent.Status))
		}
		if synced != nil {
			add("crm", "status", "none", synced.Status)
		}
		return out
	}
	want := provisioning.Plan(sub.Snapshot(""))
	if ent == nil {
		add("provisioning", "entitlement", string(want.Status), "none")
	} else {
		add("provisioning", "status", string(want.Status), string(ent.Status))
		add("provisioning", "plan_code", want.PlanCode, ent.PlanCode)
		add("provisioning", "seats", fmt.Sprint(want.Seats), fmt.Sprint(ent.Seats))
		add("provisioning", "ends_on", want.EndsOn, ent.EndsOn)
	}
	if synced == nil {
		add("crm", "status", string(sub.Status), "none")
	} else {
		add("crm", "status", string(sub.Status), synced.Status)
	}
	for _, ln := range sub.Ledger.Uncovered() {
		add("ledger", ln.Key, "granted only when paid", "granted, "+string(ln.Outcome))
	}
	return out
}

func lookup[T any](m map[string]T, id string) *T {
	if v, ok := m[id]; ok {
		return &v
	}
	return nil
}

// all reads a whole collection keyed by document id.
func all[T any](ctx context.Context, st *store.Store, collection string) (map[string]T, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := store.ByID[T](ctx, st, docstore.Query{Collection: collection})
	if err != nil {
		return nil, fmt.Errorf("consistency: read %s: %w", collection, err)
	}
	return out, nil
}
