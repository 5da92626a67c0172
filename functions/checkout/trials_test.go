package checkout_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/gitlab"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/consumer"
)

func trialRequest(ns string) map[string]any {
	return map[string]any{"namespace_id": ns, "contact": map[string]any{"email": "owner@example.com", "name": "Owner"}}
}

func (fx fixture) trialEvents(t *testing.T, typ string) []catalog.TrialSnapshot {
	t.Helper()
	var out []catalog.TrialSnapshot
	for _, e := range fx.rec.On(catalog.TopicSubscriptionEvents) {
		if e.Type() != typ {
			continue
		}
		var s catalog.TrialSnapshot
		if err := json.Unmarshal(e.Data(), &s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func TestTrialStartsOncePerNamespaceWithGitLabTrialFields(t *testing.T) {
	fx := setup(t, false)
	status, e := fx.do(t, "GET", "/trials/eligibility?namespace_id=ns-7", token(), "", nil)
	if status != http.StatusOK || e["can_start_trial"] != true || e["has_active_subscription"] != false {
		t.Fatalf("eligibility = %d %v", status, e)
	}
	status, ans := fx.do(t, "POST", "/trials", token(), "", trialRequest("ns-7"))
	if status != http.StatusCreated || ans["plan_code"] != "ultimate" || ans["starts_on"] != "2026-03-02" || ans["ends_on"] != "2026-04-01" {
		t.Fatalf("start = %d %v", status, ans)
	}
	calls := fx.gitlab.Provisions()
	if len(calls) != 1 {
		t.Fatalf("GitLab provisions = %d", len(calls))
	}
	bp := calls[0].Body["provision"].(map[string]any)["base_product"].(map[string]any)
	if bp["plan_code"] != "ultimate" || bp["trial"] != true || bp["trial_starts_on"] != "2026-03-02" || bp["trial_ends_on"] != "2026-04-01" {
		t.Fatalf("GitLab base_product = %v", bp)
	}
	if ns, _ := fx.gitlab.Namespace("ns-7"); ns.Subscription["trial"] != true {
		t.Fatalf("GitLab namespace = %v", ns.Subscription)
	}
	if got := fx.trialEvents(t, catalog.TrialStarted); len(got) != 1 || got[0].Contact.Email != "owner@example.com" || got[0].EndsOn != "2026-04-01" {
		t.Fatalf("trial.started = %+v", got)
	}
	// A second trial for the namespace is refused, and nothing is called.
	if status, _ := fx.do(t, "POST", "/trials", token(), "", trialRequest("ns-7")); status != http.StatusConflict {
		t.Fatalf("second trial: status = %d", status)
	}
	if n := len(fx.gitlab.Provisions()); n != 1 {
		t.Fatalf("GitLab provisions after refusal = %d", n)
	}
	status, e = fx.do(t, "GET", "/trials/eligibility?namespace_id=ns-7", token(), "", nil)
	if status != http.StatusOK || e["can_start_trial"] != false || e["trial"].(map[string]any)["status"] != store.TrialActive {
		t.Fatalf("eligibility after = %d %v", status, e)
	}
	// Unauthenticated: refused before anything.
	if status, _ := fx.do(t, "POST", "/trials", "", "", trialRequest("ns-8")); status != http.StatusUnauthorized {
		t.Fatalf("unauthenticated trial: status = %d", status)
	}
	if _, found, _ := fx.st.Trial(context.Background(), "ns-8"); found {
		t.Fatal("trial stored for an unauthenticated request")
	}
}

func TestTrialRefusedForAPayingNamespace(t *testing.T) {
	fx := setup(t, false)
	fx.activeSubscription(t, "sub-paid", "ns-paid")
	status, e := fx.do(t, "GET", "/trials/eligibility?namespace_id=ns-paid", token(), "", nil)
	if status != http.StatusOK || e["can_start_trial"] != false || e["has_active_subscription"] != true || e["subscription_id"] != "sub-paid" {
		t.Fatalf("eligibility of a paying namespace = %d %v", status, e)
	}
	if status, _ := fx.do(t, "POST", "/trials", token(), "", trialRequest("ns-paid")); status != http.StatusConflict {
		t.Fatalf("status = %d", status)
	}
	if len(fx.gitlab.Provisions()) != 0 {
		t.Fatal("GitLab called")
	}
}

func (fx fixture) activeSubscription(t *testing.T, id, ns string) {
	t.Helper()
	fx.subscriptionIn(t, id, ns, subscription.Active)
}

// subscriptionIn stores subscription id of namespace ns in status.
func (fx fixture) subscriptionIn(t testing.TB, id, ns string, status subscription.Status) {
	t.Helper()
	s := &subscription.Subscription{ID: id, Status: status, Order: catalog.Order{PlanCode: "ultimate", Seats: 5, NamespaceID: ns, Deployment: catalog.DeploymentSaaS}}
	if err := fx.st.DB.Set(context.Background(), store.Subscriptions, id, s); err != nil {
		t.Fatal(err)
	}
}

func TestTrialEndingNoticeThenEndReturnsToFree(t *testing.T) {
	fx := setup(t, false)
	if status, _ := fx.do(t, "POST", "/trials", token(), "", trialRequest("ns-9")); status != http.StatusCreated {
		t.Fatalf("start = %d", status)
	}
	tick := func() map[string]any {
		t.Helper()
		status, res := fx.do(t, "POST", "/trials/tick", token(), "", nil)
		if status != http.StatusOK {
			t.Fatalf("tick = %d %v", status, res)
		}
		return res
	}
	if res := tick(); res["ending"] != float64(0) || res["ended"] != float64(0) {
		t.Fatalf("first tick = %v", res)
	}
	fx.clock.Set(time.Date(2026, 3, 25, 6, 0, 0, 0, time.UTC)) // 7 days before the end
	if res := tick(); res["ending"] != float64(1) {
		t.Fatalf("notice tick = %v", res)
	}
	if res := tick(); res["ending"] != float64(0) {
		t.Fatalf("notice repeated: %v", res)
	}
	fx.clock.Set(time.Date(2026, 4, 1, 6, 0, 0, 0, time.UTC))
	if res := tick(); res["ended"] != float64(1) {
		t.Fatalf("end tick = %v", res)
	}
	ns, _ := fx.gitlab.Namespace("ns-9")
	if ns.Subscription["plan_code"] != "free" || ns.Subscription["trial"] != false {
		t.Fatalf("GitLab after the end = %v", ns.Subscription)
	}
	if len(fx.trialEvents(t, catalog.TrialEnding)) != 1 || len(fx.trialEvents(t, catalog.TrialEnded)) != 1 {
		t.Fatalf("events = %v", fx.rec.On(catalog.TopicSubscriptionEvents))
	}
	tr, _, _ := fx.st.Trial(context.Background(), "ns-9")
	if tr.Status != store.TrialEnded {
		t.Fatalf("trial = %+v", tr)
	}
}

func TestTrialConvertedByAPurchaseKeepsAccess(t *testing.T) {
	fx := setup(t, false)
	if status, _ := fx.do(t, "POST", "/trials", token(), "", trialRequest("ns-10")); status != http.StatusCreated {
		t.Fatalf("start = %d", status)
	}
	// Buying during the trial is allowed: the trial is not a subscription.
	if status, ans := fx.do(t, "POST", "/checkouts", token(), "buy-10", purchase(func(p map[string]any) { p["namespace_id"] = "ns-10" })); status != http.StatusCreated {
		t.Fatalf("checkout during the trial = %d %v", status, ans)
	}
	fx.activeSubscription(t, "sub-cs_10", "ns-10")            // the completion activated it
	fx.clock.Set(time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC)) // after the trial's end
	status, res := fx.do(t, "POST", "/trials/tick", token(), "", nil)
	if status != http.StatusOK || res["converted"] != float64(1) || res["ended"] != float64(0) {
		t.Fatalf("tick = %d %v", status, res)
	}
	for _, c := range fx.gitlab.Provisions() {
		if bp := c.Body["provision"].(map[string]any)["base_product"].(map[string]any); bp["plan_code"] == "free" {
			t.Fatalf("namespace returned to free although bought: %v", bp)
		}
	}
	got := fx.trialEvents(t, catalog.TrialConverted)
	if len(got) != 1 || got[0].SubscriptionID != "sub-cs_10" {
		t.Fatalf("trial.converted = %+v", got)
	}
}

func TestTrialExtensionIsRecordedSentAndAnnounced(t *testing.T) {
	fx := setup(t, false)
	if status, _ := fx.do(t, "POST", "/trials", token(), "", trialRequest("ns-11")); status != http.StatusCreated {
		t.Fatalf("start = %d", status)
	}
	if _, err := fx.st.ExtendTrial(context.Background(), "ns-11", 14, "support@example.com", "ticket 123: evaluation delayed", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.st.ExtendTrial(context.Background(), "ns-11", 5, "", "", t0); err == nil {
		t.Fatal("an extension without who and why was accepted")
	}
	status, res := fx.do(t, "POST", "/trials/tick", token(), "", nil)
	if status != http.StatusOK || res["extended"] != float64(1) {
		t.Fatalf("tick = %d %v", status, res)
	}
	ns, _ := fx.gitlab.Namespace("ns-11")
	if ns.Subscription["trial_ends_on"] != "2026-04-15" {
		t.Fatalf("GitLab trial_ends_on = %v", ns.Subscription["trial_ends_on"])
	}
	got := fx.trialEvents(t, catalog.TrialExtended)
	if len(got) != 1 || got[0].ExtendedBy != "support@example.com" || got[0].Reason == "" || got[0].EndsOn != "2026-04-15" {
		t.Fatalf("trial.extended = %+v", got)
	}
	tr, _, _ := fx.st.Trial(context.Background(), "ns-11")
	if tr.Unsynced || len(tr.Extensions) != 1 || tr.Extensions[0].Days != 14 {
		t.Fatalf("trial = %+v", tr)
	}
}

// freeCalls are the GitLab calls that returned ns to the free plan.
func (fx fixture) freeCalls(ns string) int {
	n := 0
	for _, c := range fx.gitlab.Provisions() {
		bp := c.Body["provision"].(map[string]any)["base_product"].(map[string]any)
		if bp["plan_code"] == "free" && strings.Contains(c.Path, ns) {
			n++
		}
	}
	return n
}

// A Pending subscription (a delayed payment not collected) is no paid term:
// it converts no trial, and at the end the namespace returns to free.
func TestTrialIsNotConvertedByAPendingSubscription(t *testing.T) {
	fx := setup(t, false)
	if status, _ := fx.do(t, "POST", "/trials", token(), "", trialRequest("ns-12")); status != http.StatusCreated {
		t.Fatalf("start = %d", status)
	}
	fx.subscriptionIn(t, "sub-pending", "ns-12", subscription.Pending)
	if status, res := fx.do(t, "POST", "/trials/tick", token(), "", nil); status != http.StatusOK || res["converted"] != float64(0) {
		t.Fatalf("tick during the trial = %d %v", status, res)
	}
	fx.clock.Set(time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC))
	if status, res := fx.do(t, "POST", "/trials/tick", token(), "", nil); status != http.StatusOK || res["converted"] != float64(0) || res["ended"] != float64(1) {
		t.Fatalf("tick after the end = %d %v", status, res)
	}
	if ns, _ := fx.gitlab.Namespace("ns-12"); ns.Subscription["plan_code"] != "free" {
		t.Fatalf("GitLab = %v", ns.Subscription)
	}
	if got := fx.trialEvents(t, catalog.TrialConverted); len(got) != 0 {
		t.Fatalf("trial.converted = %+v", got)
	}
}

// provisioningStandIn does for a purchase what provisioning does: under
// the namespace's lease (catalog.NamespaceLeaseOwner) it sends the paid
// plan to GitLab, for a subscription payment-result has stored active.
type provisioningStandIn struct {
	fx fixture
	ns string
}

func (p provisioningStandIn) provision(ctx context.Context, t *testing.T, inside func()) error {
	return consumer.Hold(ctx, p.fx.st, catalog.NamespaceLeaseOwner, catalog.NamespaceTarget(p.ns), func(ctx context.Context) error {
		inside()
		p.fx.activeSubscription(t, "sub-bought", p.ns)
		return gitlab.NewClient(p.fx.gitlab.URL(), []byte(jwtKey), nil).Provision(ctx, p.ns, gitlab.ProvisionRequest{
			BaseProduct: gitlab.BaseProduct{PlanCode: "premium", Seats: 5, StartDate: "2026-04-01", EndDate: "2027-04-01", PurchaseXID: "purchase-bought"},
		})
	})
}

// leaseTries closes tried when the function first tries to take a lease.
type leaseTries struct {
	docstore.DB
	once  sync.Once
	tried chan struct{}
}

func (d *leaseTries) Create(ctx context.Context, coll, id string, v any) error {
	if coll == store.Leases {
		d.once.Do(func() { close(d.tried) })
	}
	return d.DB.Create(ctx, coll, id, v)
}

// wait waits until the function tries a lease, or fails the test after a
// while (the function went on without one).
func (d *leaseTries) wait(t *testing.T) {
	select {
	case <-d.tried:
	case <-time.After(5 * time.Second):
		t.Error("the function never tried to take the namespace's lease")
	}
}

// plans are the plan codes GitLab was sent for ns, in order.
func (fx fixture) plans(ns string) []string {
	var out []string
	for _, c := range fx.gitlab.Provisions() {
		if strings.Contains(c.Path, ns) {
			out = append(out, c.Body["provision"].(map[string]any)["base_product"].(map[string]any)["plan_code"].(string))
		}
	}
	return out
}

// A purchase being provisioned when the trial ends: the tick waits for
// provisioning's lease on the namespace, then finds the purchase paid and
// converts the trial; nothing sends the free plan over the paid one.
func TestTrialEndWaitsForAPurchaseBeingProvisioned(t *testing.T) {
	watch := &leaseTries{tried: make(chan struct{})}
	fx := setupWith(t, options{wrap: func(db docstore.DB) docstore.DB { watch.DB = db; return watch }})
	if status, _ := fx.do(t, "POST", "/trials", token(), "", trialRequest("ns-13")); status != http.StatusCreated {
		t.Fatalf("start = %d", status)
	}
	watch.once, watch.tried = sync.Once{}, make(chan struct{})
	fx.clock.Set(time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC))
	held := make(chan struct{})
	provisioned := make(chan error, 1)
	go func() {
		provisioned <- provisioningStandIn{fx, "ns-13"}.provision(context.Background(), t, func() {
			close(held)
			watch.wait(t) // the tick is waiting for the lease
		})
	}()
	<-held
	status, res := fx.do(t, "POST", "/trials/tick", token(), "", nil)
	if err := <-provisioned; err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK || res["converted"] != float64(1) || res["ended"] != float64(0) {
		t.Fatalf("tick = %d %v, want the trial converted", status, res)
	}
	if got := fx.plans("ns-13"); strings.Join(got, ",") != "ultimate,premium" {
		t.Fatalf("GitLab was sent %v for the namespace, want the trial's then the purchase's", got)
	}
	if got := fx.trialEvents(t, catalog.TrialConverted); len(got) != 1 || got[0].SubscriptionID != "sub-bought" {
		t.Fatalf("trial.converted = %+v", got)
	}
}

// A purchase paid while the tick is ending the trial: provisioning waits
// for the tick's lease, so its paid plan lands after the free one.
func TestAPurchasePaidWhileTheTrialEndsLandsOverTheFreePlan(t *testing.T) {
	hook := &duringQuery{collection: store.Subscriptions}
	fx := setupWith(t, options{wrap: func(db docstore.DB) docstore.DB { hook.DB = db; return hook }})
	if status, _ := fx.do(t, "POST", "/trials", token(), "", trialRequest("ns-15")); status != http.StatusCreated {
		t.Fatalf("start = %d", status)
	}
	provisioned := make(chan error, 1)
	hook.during = func() { // the tick holds the lease and looks for a paid subscription
		go func() { provisioned <- provisioningStandIn{fx, "ns-15"}.provision(context.Background(), t, func() {}) }()
	}
	fx.clock.Set(time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC))
	status, res := fx.do(t, "POST", "/trials/tick", token(), "", nil)
	if status != http.StatusOK || res["ended"] != float64(1) {
		t.Fatalf("tick = %d %v, want the trial ended", status, res)
	}
	if err := <-provisioned; err != nil {
		t.Fatal(err)
	}
	if got := fx.plans("ns-15"); strings.Join(got, ",") != "ultimate,free,premium" {
		t.Fatalf("GitLab was sent %v for the namespace, want the paid plan last", got)
	}
	if ns, _ := fx.gitlab.Namespace("ns-15"); ns.Subscription["plan_code"] != "premium" {
		t.Fatalf("GitLab holds %v, want the purchase's plan", ns.Subscription)
	}
}

// A purchase being provisioned when a trial is asked for: the trial waits
// for the lease, then finds the purchase and is refused; GitLab keeps the
// paid plan, with no trial sent over it.
func TestTrialStartWaitsForAPurchaseBeingProvisioned(t *testing.T) {
	watch := &leaseTries{tried: make(chan struct{})}
	fx := setupWith(t, options{wrap: func(db docstore.DB) docstore.DB { watch.DB = db; return watch }})
	held := make(chan struct{})
	provisioned := make(chan error, 1)
	go func() {
		provisioned <- provisioningStandIn{fx, "ns-16"}.provision(context.Background(), t, func() {
			close(held)
			watch.wait(t)
		})
	}()
	<-held
	status, ans := fx.do(t, "POST", "/trials", token(), "", trialRequest("ns-16"))
	if err := <-provisioned; err != nil {
		t.Fatal(err)
	}
	if status != http.StatusConflict || ans["error"] != "already_subscribed" {
		t.Fatalf("trial = %d %v, want 409 already_subscribed", status, ans)
	}
	if got := fx.plans("ns-16"); strings.Join(got, ",") != "premium" {
		t.Fatalf("GitLab was sent %v for the namespace, want the purchase's plan alone", got)
	}
}

// duringQuery runs during once, at the function's first query of
// collection, once during is set.
type duringQuery struct {
	docstore.DB
	collection string
	once       sync.Once
	during     func()
}

func (d *duringQuery) Query(ctx context.Context, q docstore.Query) ([]docstore.Doc, error) {
	docs, err := d.DB.Query(ctx, q)
	if q.Collection == d.collection && d.during != nil {
		d.once.Do(d.during)
	}
	return docs, err
}

// An operator's extension landing after the tick listed the active trials
// and before it took the trial's lease: the tick acts on the trial as it is
// under the lease, and sends the extension rather than ending the trial.
func TestTheTickActsOnTheTrialAsItIsUnderItsLease(t *testing.T) {
	hook := &duringQuery{collection: store.Trials}
	fx := setupWith(t, options{wrap: func(db docstore.DB) docstore.DB { hook.DB = db; return hook }})
	if status, _ := fx.do(t, "POST", "/trials", token(), "", trialRequest("ns-17")); status != http.StatusCreated {
		t.Fatalf("start = %d", status)
	}
	hook.during = func() {
		if _, err := fx.st.ExtendTrial(context.Background(), "ns-17", 14, "support@example.com", "ticket 7", fx.clock.Now()); err != nil {
			t.Error(err)
		}
	}
	fx.clock.Set(time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC)) // past the first end, 2026-04-01
	status, res := fx.do(t, "POST", "/trials/tick", token(), "", nil)
	if status != http.StatusOK || res["extended"] != float64(1) || res["ended"] != float64(0) {
		t.Fatalf("tick = %d %v, want the extension sent and nothing ended", status, res)
	}
	if ns, _ := fx.gitlab.Namespace("ns-17"); ns.Subscription["trial"] != true || ns.Subscription["trial_ends_on"] != "2026-04-15" {
		t.Fatalf("GitLab holds %v, want the trial to 2026-04-15", ns.Subscription)
	}
	if tr, _, _ := fx.st.Trial(context.Background(), "ns-17"); tr.Status != store.TrialActive || tr.Unsynced {
		t.Fatalf("trial = %+v, want active and synced", tr)
	}
}

// With a tick identity configured, only it runs the tick, and it can do
// nothing else: GitLab.com's caller cannot end trials, nor the scheduler buy.
func TestTrialTickAndPurchasesAreForTheirOwnCallers(t *testing.T) {
	const ticker = "trial-tick@fulfillment-test.iam.gserviceaccount.com"
	fx := setupWith(t, options{tickCallers: []string{ticker}})
	tickToken := issuer.Token(ticker, audience, time.Hour)
	if status, ans := fx.do(t, "POST", "/trials/tick", token(), "", nil); status != http.StatusForbidden || ans["detail"] == "" {
		t.Fatalf("tick by the buyers' caller = %d %v", status, ans)
	}
	if status, res := fx.do(t, "POST", "/trials/tick", tickToken, "", nil); status != http.StatusOK {
		t.Fatalf("tick by the scheduler = %d %v", status, res)
	}
	for _, r := range []struct{ method, path, key string }{
		{"POST", "/checkouts", "by-ticker"}, {"POST", "/trials", ""}, {"GET", "/trials/eligibility?namespace_id=ns-1", ""},
	} {
		if status, _ := fx.do(t, r.method, r.path, tickToken, r.key, purchase(nil)); status != http.StatusForbidden {
			t.Errorf("%s %s by the scheduler = %d, want 403", r.method, r.path, status)
		}
	}
	if status, _ := fx.do(t, "POST", "/trials", token(), "", trialRequest("ns-14")); status != http.StatusCreated {
		t.Fatalf("trial by the buyers' caller = %d", status)
	}
	if n, calls := fx.count(t, store.Quotes), fx.stripe.Calls(); n != 0 || len(calls) != 0 {
		t.Fatalf("the scheduler's refused purchase stored %d quotes, made %d Stripe calls", n, len(calls))
	}
}
