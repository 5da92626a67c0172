package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"fulfillment/infra/localstack"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/testsupport/emulator"
	"fulfillment/shared/testsupport/testdouble"
)

// A trial's life on a stack of its own whose clock the test moves: started
// once per namespace with GitLab's trial fields, reported by the
// eligibility query, converted by a purchase made through the checkout API
// and its signed completion (the namespace never goes back to free), and,
// for a namespace that bought nothing, returned to free at its end. The
// stack authorises routes per caller as production does: the tick is the
// scheduler's alone.
func TestTrialLifecycleOnTheStack(t *testing.T) {
	const ticker = "checkout-trial-tick@fulfillment-local.iam.gserviceaccount.com"
	y := startClockedStack(t, localstack.Options{Project: emulator.NewProject("trial"), // 2026-01-15T10:00Z
		Env: map[string]map[string]string{"checkout": {"CHECKOUT_TICK_CALLERS": ticker}}})
	s := y.s
	tick := func() (int, map[string]any) {
		t.Helper()
		return checkoutAPI(t, s, http.MethodPost, "/trials/tick", s.OIDC.Token(ticker, localstack.CheckoutAudience, time.Hour), "", nil)
	}
	api := func(method, path string, body any) (int, map[string]any) {
		t.Helper()
		return checkoutAPI(t, s, method, path, s.CheckoutToken(), "", body)
	}
	startTrial := func(ns string) {
		t.Helper()
		status, ans := api(http.MethodPost, "/trials", map[string]any{"namespace_id": ns, "contact": map[string]any{"email": "owner@example.com", "name": "Owner"}})
		if status != http.StatusCreated || ans["plan_code"] != "ultimate" || ans["starts_on"] != "2026-01-15" || ans["ends_on"] != "2026-02-14" {
			t.Fatalf("trial of %s = %d %v", ns, status, ans)
		}
	}
	buyer, idler := uniq("ns"), uniq("ns")
	startTrial(buyer)
	startTrial(idler)

	calls := callsTo(s.GitLab.Calls(), gitlabPath(buyer))
	if len(calls) != 1 {
		t.Fatalf("GitLab calls for the trial = %d", len(calls))
	}
	if bp := baseProduct(calls[0]); bp["plan_code"] != "ultimate" || bp["trial"] != true || bp["trial_starts_on"] != "2026-01-15" || bp["trial_ends_on"] != "2026-02-14" {
		t.Fatalf("GitLab base_product = %v", bp)
	}
	if status, ans := api(http.MethodPost, "/trials", map[string]any{"namespace_id": buyer, "contact": map[string]any{"email": "owner@example.com"}}); status != http.StatusConflict {
		t.Fatalf("second trial = %d %v", status, ans)
	}
	if n := len(callsTo(s.GitLab.Calls(), gitlabPath(buyer))); n != 1 {
		t.Fatalf("the refused trial called GitLab: %d calls", n)
	}
	if e := eligibility(t, s, buyer); e["can_start_trial"] != false || e["has_active_subscription"] != false || trialStatus(e) != store.TrialActive {
		t.Fatalf("eligibility during the trial = %v", e)
	}

	// Bought during the trial, through the API and a signed completion.
	y.setClock("2026-02-01T10:00:00Z")
	q := buyThroughAPI(t, s, buyer, "premium", 5)
	y.webhook(completedEvent(uniq("evt"), q, q.SessionID, q.TotalCents, "usd", y.now()))
	subID := stripe.SubscriptionIDForCheckout(q.SessionID)
	eventually(t, 30*time.Second, "the purchase active and provisioned", func() (bool, string) {
		sub, err := s.Store.Subscription(background, nil, subID)
		calls := callsTo(s.GitLab.Calls(), gitlabPath(buyer))
		if err != nil || sub.Status != subscription.Active || len(calls) < 2 {
			return false, fmt.Sprint(err, " ", len(calls), " GitLab calls")
		}
		return baseProduct(calls[len(calls)-1])["plan_code"] == "premium", fmt.Sprint(baseProduct(calls[len(calls)-1]))
	})

	// Past both trials' end, the daily tick: GitLab.com's caller may not
	// run it, the scheduler's identity does.
	y.setClock("2026-02-15T10:00:00Z")
	if status, res := api(http.MethodPost, "/trials/tick", nil); status != http.StatusForbidden {
		t.Fatalf("tick by GitLab.com's caller = %d %v", status, res)
	}
	if status, res := tick(); status != http.StatusOK || res["converted"] != float64(1) || res["ended"] != float64(1) {
		t.Fatalf("tick = %d %v", status, res)
	}
	if e := eligibility(t, s, buyer); e["has_active_subscription"] != true || e["subscription_id"] != subID || trialStatus(e) != store.TrialConverted {
		t.Fatalf("eligibility of the buyer after the end = %v", e)
	}
	for _, c := range callsTo(s.GitLab.Calls(), gitlabPath(buyer)) {
		if bp := baseProduct(c); bp["plan_code"] == "free" {
			t.Fatalf("the buyer's namespace went back to free: %v", bp)
		}
	}
	if ns, _ := s.GitLab.Namespace(buyer); ns.Subscription["plan_code"] != "premium" {
		t.Fatalf("the buyer's GitLab plan = %v", ns.Subscription)
	}
	idle := callsTo(s.GitLab.Calls(), gitlabPath(idler))
	if last := lastBaseProduct(idle); len(idle) != 2 || last["plan_code"] != "free" || last["trial"] != false {
		t.Fatalf("the idle namespace's GitLab calls: %d, last %v", len(idle), last)
	}
	if e := eligibility(t, s, idler); e["can_start_trial"] != false || trialStatus(e) != store.TrialEnded {
		t.Fatalf("eligibility of the idle namespace after the end = %v", e)
	}
}

func eligibility(t *testing.T, s *localstack.Stack, ns string) map[string]any {
	t.Helper()
	status, e := checkoutAPI(t, s, http.MethodGet, "/trials/eligibility?namespace_id="+ns, s.CheckoutToken(), "", nil)
	if status != http.StatusOK {
		t.Fatalf("eligibility of %s = %d %v", ns, status, e)
	}
	return e
}

func trialStatus(e map[string]any) any {
	tr, _ := e["trial"].(map[string]any)
	return tr["status"]
}

func lastBaseProduct(calls []testdouble.Call) map[string]any {
	if len(calls) == 0 {
		return nil
	}
	return baseProduct(calls[len(calls)-1])
}
