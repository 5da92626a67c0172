package provisioning

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/gitlab"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/license"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/runtime/entrypoint"
	"fulfillment/shared/testsupport/emulator"
	"fulfillment/shared/testsupport/storetest"
	"fulfillment/shared/testsupport/testdouble"
)

func TestMain(m *testing.M) { storetest.RunTests(m) }

const deadLetterTopic = "dead-letters"

var jwtKey = []byte("gitlab-jwt-test-key-0123456789abcdef")

type fixture struct {
	st  *store.Store
	rec *pubsub.Recorder
	gl  *testdouble.GitLab
	pub ed25519.PublicKey
	f   *Function
}

func setup(t testing.TB) fixture {
	t.Helper()
	st := storetest.Open(t, "prov")
	gl, err := testdouble.StartGitLab("127.0.0.1:0", jwtKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gl.Close() })
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	rec := &pubsub.Recorder{}
	f := New(Deps{
		Store: st, Publisher: rec, GitLab: gitlab.NewClient(gl.URL(), jwtKey, nil), LicenseKey: key,
		DeadLetterTopic: deadLetterTopic, Logger: slog.New(slog.DiscardHandler),
	})
	return fixture{st: st, rec: rec, gl: gl, pub: key.Public().(ed25519.PublicKey), f: f}
}

var termStart = time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)

func snapshot(status string, version int64, deployment string) catalog.SubscriptionSnapshot {
	return catalog.SubscriptionSnapshot{
		ID: "sub-cs_1", Version: version, Status: status, PurchaseID: "cs_1",
		Order: catalog.Order{
			PlanCode: "premium", Seats: 10, Deployment: deployment, NamespaceID: "ns-42", InstanceID: "inst-7",
			StorageGB: 20, ComputeMinutes: 5000, AutoRenew: true, TermMonths: 12,
		},
		Customer:  catalog.Customer{ProviderCustomerID: "cus_1"},
		TermStart: termStart, TermEnd: termStart.AddDate(1, 0, 0),
	}
}

func subscriptionEvent(t *testing.T, id, typ string, snap catalog.SubscriptionSnapshot) event.Event {
	t.Helper()
	e, err := cloudevent.New(context.Background(), id, catalog.SourcePaymentResult, typ, snap.ID, snap)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (fx fixture) handle(t *testing.T, e event.Event) {
	t.Helper()
	if err := fx.f.Handle(context.Background(), e); err != nil {
		t.Fatalf("Handle: %v", err)
	}
}

func (fx fixture) entitlement(t *testing.T, id string) Entitlement {
	t.Helper()
	var e Entitlement
	if err := fx.st.Get(context.Background(), nil, store.Entitlements, id, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

const provisionPath = "/api/v4/internal/gitlab_subscriptions/namespaces/ns-42/provision"

// calls counts the GitLab calls by answered status, leaving out the reads
// of the namespace's current plan that answered (200 or 404).
// wantStale checks that stale was recorded as processed and announced
// nothing: the only result published is applied's.
func (fx fixture) wantStale(t *testing.T, stale, applied event.Event) {
	t.Helper()
	if _, found := storetest.Lookup[map[string]any](t, fx.st, store.Processed, Name+"_"+cloudevent.Key(stale)); !found {
		t.Errorf("stale event %s not recorded as processed", stale.ID())
	}
	ids, _ := published(fx.rec, catalog.TopicProvisioningEvents)
	if len(ids) != 1 || ids[0] != cloudevent.DerivedID(applied, catalog.ProvisioningCompleted) {
		t.Errorf("published %v, want only %s's result", ids, applied.ID())
	}
}

func (fx fixture) calls(t *testing.T) (ok, failed int) {
	t.Helper()
	var counted []testdouble.Call
	for _, c := range fx.gl.Calls() {
		switch {
		case c.Method == http.MethodGet && (c.Path == currentPath || c.Path == limitsPath) &&
			(c.Status == http.StatusOK || c.Status == http.StatusNotFound):
		case c.Path == provisionPath || c.Path == currentPath || c.Path == limitsPath:
			counted = append(counted, c)
		default:
			t.Errorf("unexpected GitLab call %s %s", c.Method, c.Path)
		}
	}
	return testdouble.Answered(counted)
}

// The internal reads of what the namespace holds: its subscription and its
// limits (storage, compute minutes).
const (
	currentPath = "/api/v4/internal/gitlab_subscriptions/namespaces/ns-42/gitlab_subscription"
	limitsPath  = "/api/v4/internal/gitlab_subscriptions/namespaces/ns-42"
)

func baseProduct(c testdouble.Call) map[string]any {
	p, _ := c.Body["provision"].(map[string]any)
	bp, _ := p["base_product"].(map[string]any)
	return bp
}

func published(rec *pubsub.Recorder, topic string) (ids, types []string) {
	for _, e := range rec.On(topic) {
		ids, types = append(ids, e.ID()), append(types, e.Type())
	}
	return ids, types
}

func TestActivationProvisionsTheNamespace(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	in := subscriptionEvent(t, "act-1", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSaaS))
	fx.handle(t, in)

	calls := fx.gl.Provisions()
	if len(calls) != 1 || calls[0].Status != http.StatusOK {
		t.Fatalf("GitLab calls = %+v", calls)
	}
	bp := baseProduct(calls[0])
	if bp["plan_code"] != "premium" || bp["seats"] != float64(10) || bp["purchase_xid"] != "cs_1-v1" ||
		bp["start_date"] != "2026-03-10" || bp["end_date"] != "2027-03-10" || bp["auto_renew"] != true {
		t.Errorf("base_product = %v", bp)
	}
	prov, _ := calls[0].Body["provision"].(map[string]any)
	if st, _ := prov["storage"].(map[string]any); st["additional_purchased_storage_size"] != float64(20*1024) {
		t.Errorf("storage = %v", prov["storage"])
	}
	e := fx.entitlement(t, "sub-cs_1")
	if e.Status != EntitlementActive || e.Version != 1 || e.Target != "namespace:ns-42" || e.PurchaseXID != "cs_1-v1" {
		t.Errorf("entitlement = %+v", e)
	}
	out := fx.rec.On(catalog.TopicProvisioningEvents)
	if len(out) != 1 || out[0].Type() != catalog.ProvisioningCompleted || out[0].ID() != cloudevent.DerivedID(in, catalog.ProvisioningCompleted) {
		t.Fatalf("published %v", out)
	}
	var res catalog.ProvisioningResult
	if err := out[0].DataAs(&res); err != nil || res.Version != 1 || res.Target != "namespace:ns-42" || res.Error != "" {
		t.Errorf("result = %+v, %v", res, err)
	}
}

func TestCancellationRevokesToFree(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	fx.handle(t, subscriptionEvent(t, "act-1", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSaaS)))
	fx.handle(t, subscriptionEvent(t, "can-2", catalog.SubscriptionCanceled, snapshot("canceled", 2, catalog.DeploymentSaaS)))

	calls := fx.gl.Provisions()
	if len(calls) != 2 {
		t.Fatalf("GitLab calls = %d, want 2", len(calls))
	}
	if bp := baseProduct(calls[1]); bp["plan_code"] != "free" || bp["seats"] != float64(0) || bp["auto_renew"] != false {
		t.Errorf("revoking base_product = %v", bp)
	}
	if e := fx.entitlement(t, "sub-cs_1"); e.Status != EntitlementRevoked || e.Version != 2 || e.PlanCode != "free" {
		t.Errorf("entitlement = %+v", e)
	}
}

func TestSelfManagedGetsASignedLicense(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	fx.handle(t, subscriptionEvent(t, "act-sm", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSelfManaged)))

	if calls := fx.gl.Provisions(); len(calls) != 0 {
		t.Fatalf("self-managed subscription called GitLab: %+v", calls)
	}
	e := fx.entitlement(t, "sub-cs_1")
	if e.Target != "instance:inst-7" || e.LicenseID != "lic-sub-cs_1-v1" || e.Status != EntitlementActive {
		t.Fatalf("entitlement = %+v", e)
	}
	var signed license.Signed
	if err := fx.st.Get(context.Background(), nil, store.Licenses, e.LicenseID, &signed); err != nil {
		t.Fatal(err)
	}
	l, err := license.Verify(signed, fx.pub)
	if err != nil {
		t.Fatal(err)
	}
	if l.InstanceID != "inst-7" || l.Seats != 10 || l.ExpiresOn != "2027-03-10" {
		t.Errorf("license = %+v", l)
	}
}

func TestPushDeliveryOverHTTP(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	srv := httptest.NewServer(entrypoint.Serve(fx.f, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	in := subscriptionEvent(t, "act-http", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSaaS))
	if code, body := emulator.Post(t, srv.URL, emulator.PushBody(in, "7")); code != http.StatusNoContent {
		t.Fatalf("push answered %d %s", code, body)
	}
	if ok, _ := fx.calls(t); ok != 1 {
		t.Fatalf("GitLab provisioned %d times, want 1", ok)
	}
	if ids, _ := published(fx.rec, catalog.TopicProvisioningEvents); len(ids) != 1 {
		t.Fatalf("published %v", ids)
	}
}

func TestDuplicateDeliveryProvisionsOnce(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	in := subscriptionEvent(t, "act-dup", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSaaS))
	fx.handle(t, in)
	fx.handle(t, in)

	if ok, failed := fx.calls(t); ok != 1 || failed != 0 {
		t.Fatalf("GitLab calls ok=%d failed=%d, want 1 and 0", ok, failed)
	}
	ids, _ := published(fx.rec, catalog.TopicProvisioningEvents)
	want := cloudevent.DerivedID(in, catalog.ProvisioningCompleted)
	if len(ids) != 2 || ids[0] != want || ids[1] != want {
		t.Fatalf("published %v, want %s twice", ids, want)
	}
}

func TestOlderVersionIsANoOp(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	newer := subscriptionEvent(t, "ren-2", catalog.SubscriptionRenewed, snapshot("active", 2, catalog.DeploymentSaaS))
	older := subscriptionEvent(t, "act-1", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSaaS))
	fx.handle(t, newer)
	fx.handle(t, older)

	calls := fx.gl.Provisions()
	if len(calls) != 1 || baseProduct(calls[0])["purchase_xid"] != "cs_1-v2" {
		t.Fatalf("GitLab calls = %+v, want only version 2", calls)
	}
	if e := fx.entitlement(t, "sub-cs_1"); e.Version != 2 {
		t.Errorf("entitlement version = %d, want 2", e.Version)
	}
	fx.wantStale(t, older, newer)
}

// A namespace's next subscription (another id, its versions counted from
// 1) is provisioned after the previous one reached version 9: the lease is
// the namespace's, the versions each subscription's own.
func TestANamespacesNextSubscriptionIsNotTakenForAnOlderVersion(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	fx.handle(t, subscriptionEvent(t, "exp-9", catalog.SubscriptionExpired, snapshot("expired", 9, catalog.DeploymentSaaS)))
	next := snapshot("active", 1, catalog.DeploymentSaaS)
	next.ID, next.PurchaseID = "sub-cs_2", "cs_2"
	fx.handle(t, subscriptionEvent(t, "act-next", catalog.SubscriptionActivated, next))

	calls := fx.gl.Provisions()
	if len(calls) != 2 || baseProduct(calls[1])["purchase_xid"] != "cs_2-v1" || baseProduct(calls[1])["plan_code"] != "premium" {
		t.Fatalf("GitLab calls = %+v, want the expiry's, then the next subscription's plan", calls)
	}
	if e := fx.entitlement(t, "sub-cs_2"); e.Version != 1 || e.Status != EntitlementActive {
		t.Errorf("next subscription's entitlement = %+v, want version 1 active", e)
	}
}

// A namespace can buy again while its subscription is suspended (checkout
// refuses only running ones). The suspended one's later cancellation must
// not take the new one's paid plan away: GitLab keeps it, and the old
// subscription's entitlement is recorded revoked all the same.
func TestAnEndingSubscriptionLeavesAnotherOnesPlanInPlace(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	fx.handle(t, subscriptionEvent(t, "act-1", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSaaS)))
	fx.handle(t, subscriptionEvent(t, "sus-2", catalog.SubscriptionSuspended, snapshot("suspended", 2, catalog.DeploymentSaaS)))
	next := snapshot("active", 1, catalog.DeploymentSaaS)
	next.ID, next.PurchaseID, next.Order.PlanCode = "sub-cs_2", "cs_2", "ultimate"
	fx.handle(t, subscriptionEvent(t, "act-next", catalog.SubscriptionActivated, next))
	fx.handle(t, subscriptionEvent(t, "can-3", catalog.SubscriptionCanceled, snapshot("canceled", 3, catalog.DeploymentSaaS)))

	if ns, _ := fx.gl.Namespace("ns-42"); ns.Subscription["plan_code"] != "ultimate" {
		t.Fatalf("GitLab holds %v after the old subscription's cancellation, want the new one's ultimate", ns.Subscription)
	}
	if e := fx.entitlement(t, "sub-cs_1"); e.Status != EntitlementRevoked || e.Version != 3 {
		t.Errorf("old subscription's entitlement = %+v, want revoked at version 3", e)
	}
	// Once the new one ends too, nothing else holds the namespace: free.
	ended := next
	ended.Status, ended.Version = "expired", 2
	fx.handle(t, subscriptionEvent(t, "exp-next", catalog.SubscriptionExpired, ended))
	if ns, _ := fx.gl.Namespace("ns-42"); ns.Subscription["plan_code"] != "free" {
		t.Fatalf("GitLab holds %v after every subscription ended, want free", ns.Subscription)
	}
}

// A purchase made during a trial, then canceled (a refund in whole) before
// the trial tick converted the trial: the namespace returns to its trial,
// not to free, and the packs the purchase bought are cleared.
func TestARevocationDuringATrialReturnsTheNamespaceToItsTrial(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	trialEnds := termStart.AddDate(0, 0, 20)
	if _, _, err := fx.st.CreateTrial(context.Background(), store.Trial{NamespaceID: "ns-42", PlanCode: "ultimate",
		StartsOn: termStart.AddDate(0, 0, -10), EndsOn: trialEnds, Status: store.TrialActive}); err != nil {
		t.Fatal(err)
	}
	fx.handle(t, subscriptionEvent(t, "act-1", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSaaS)))
	fx.handle(t, subscriptionEvent(t, "can-2", catalog.SubscriptionCanceled, snapshot("canceled", 2, catalog.DeploymentSaaS)))

	ns, _ := fx.gl.Namespace("ns-42")
	if ns.Subscription["plan_code"] != "ultimate" || ns.Subscription["trial"] != true || ns.Subscription["end_date"] != trialEnds.Format(time.DateOnly) {
		t.Fatalf("GitLab holds %v after the purchase's cancellation, want the trial's ultimate to %s", ns.Subscription, trialEnds.Format(time.DateOnly))
	}
	calls := fx.gl.Provisions()
	storage, _ := provisionHash(calls[len(calls)-1], "storage")
	minutes, _ := provisionHash(calls[len(calls)-1], "compute_minutes")
	if storage["additional_purchased_storage_size"] != float64(0) || minutes["extra_shared_runners_minutes_limit"] != float64(0) {
		t.Fatalf("the revocation sent storage %v and minutes %v, want the purchase's packs cleared", storage, minutes)
	}
	if e := fx.entitlement(t, "sub-cs_1"); e.Status != EntitlementRevoked || e.Version != 2 {
		t.Errorf("entitlement = %+v, want revoked at version 2", e)
	}
}

// While checkout holds a namespace's lease (a trial starting, extended or
// ending), a delivery for that namespace calls nobody and is redelivered
// (busy); once the lease is free, the redelivery provisions.
func TestProvisioningWaitsForATrialChangingTheNamespace(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	in := subscriptionEvent(t, "act-during-trial", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSaaS))
	var during error
	err := consumer.Hold(context.Background(), fx.st, catalog.NamespaceLeaseOwner, catalog.NamespaceTarget("ns-42"), func(ctx context.Context) error {
		during = fx.f.Handle(ctx, in)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(during, consumer.ErrBusy) || len(fx.gl.Provisions()) != 0 {
		t.Fatalf("delivery during the trial's change: %v, %d GitLab provisions; want busy and none", during, len(fx.gl.Provisions()))
	}
	fx.handle(t, in)
	if calls := fx.gl.Provisions(); len(calls) != 1 || baseProduct(calls[0])["purchase_xid"] != "cs_1-v1" {
		t.Fatalf("GitLab calls after the lease was free = %+v, want the plan once", calls)
	}
}

// A second event carrying a version already applied (another event id, the
// same snapshot) is found applied under the lease: no call, no announcement.
func TestSameVersionAgainIsANoOp(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	first := subscriptionEvent(t, "act-1", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSaaS))
	again := subscriptionEvent(t, "chg-1", catalog.SubscriptionChanged, snapshot("active", 1, catalog.DeploymentSaaS))
	fx.handle(t, first)
	fx.handle(t, again)

	if ok, failed := fx.calls(t); ok != 1 || failed != 0 {
		t.Fatalf("GitLab calls ok=%d failed=%d, want the first event's only", ok, failed)
	}
	fx.wantStale(t, again, first)
}

// The version applied, read under the lease, keeps a second event of that
// version from reaching GitLab even when GitLab's namespace no longer
// matches it (changed there since): the subscription's version decides, not
// the namespace's current state.
func TestAnAppliedVersionIsNotSentAgainAfterGitLabChanged(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	fx.handle(t, subscriptionEvent(t, "act-1", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSaaS)))
	other := snapshot("active", 1, catalog.DeploymentSaaS)
	other.Order.Seats = 3
	if err := fx.f.d.GitLab.Provision(context.Background(), "ns-42", gitlabRequest(Plan(other), other)); err != nil {
		t.Fatal(err)
	}
	fx.handle(t, subscriptionEvent(t, "chg-1", catalog.SubscriptionChanged, snapshot("active", 1, catalog.DeploymentSaaS)))
	if n := len(fx.gl.Provisions()); n != 2 {
		t.Fatalf("%d provisioning calls, want 2 (the activation and the change made in GitLab), none for the applied version", n)
	}
}

func TestGitLabRefusalIsDeadLettered(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	in := subscriptionEvent(t, "act-400", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSaaS))
	fx.gl.FailNext(1, http.StatusBadRequest)
	if err := fx.f.Handle(context.Background(), in); err != nil {
		t.Fatalf("Handle = %v, want nil (acknowledged)", err)
	}

	var dl consumer.DeadLetter
	if err := fx.st.Get(context.Background(), nil, store.DeadLetters, Name+"_"+cloudevent.Key(in), &dl); err != nil {
		t.Fatalf("dead letter: %v", err)
	}
	if dl.EventID != in.ID() || !strings.Contains(dl.Reason, "400") {
		t.Errorf("dead letter = %+v", dl)
	}
	if dead := fx.rec.On(deadLetterTopic); len(dead) != 1 || dead[0].ID() != in.ID() {
		t.Fatalf("dead-letter topic got %v", dead)
	}
	if e := fx.entitlement(t, "sub-cs_1"); e.Status != EntitlementFailed || !strings.Contains(e.Error, "400") {
		t.Errorf("entitlement = %+v, want failed", e)
	}
	out := fx.rec.On(catalog.TopicProvisioningEvents)
	if len(out) != 1 || out[0].Type() != catalog.ProvisioningFailed || out[0].ID() != cloudevent.DerivedID(in, catalog.ProvisioningFailed) {
		t.Fatalf("published %v, want one provisioning failed", out)
	}
	if ok, failed := fx.calls(t); ok != 0 || failed != 1 {
		t.Errorf("GitLab calls ok=%d failed=%d", ok, failed)
	}
}

func TestGitLabOutageIsRetriedAndProvisionsOnce(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	in := subscriptionEvent(t, "act-503", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSaaS))
	fx.gl.FailNext(1, http.StatusServiceUnavailable)
	if err := fx.f.Handle(context.Background(), in); err == nil {
		t.Fatal("Handle = nil while GitLab answered 503, want an error (redeliver)")
	}
	if err := fx.st.Get(context.Background(), nil, store.Entitlements, "sub-cs_1", &map[string]any{}); err == nil {
		t.Fatal("entitlement recorded although GitLab failed")
	}
	if n := len(fx.rec.On(catalog.TopicProvisioningEvents)) + len(fx.rec.On(deadLetterTopic)); n != 0 {
		t.Fatalf("%d events published on a transient failure", n)
	}
	fx.handle(t, in) // Pub/Sub's redelivery
	fx.handle(t, in) // and a late duplicate

	if ok, failed := fx.calls(t); ok != 1 || failed != 1 {
		t.Fatalf("GitLab calls ok=%d failed=%d, want 1 and 1", ok, failed)
	}
	if e := fx.entitlement(t, "sub-cs_1"); e.Status != EntitlementActive || e.Version != 1 {
		t.Errorf("entitlement = %+v", e)
	}
	ids, types := published(fx.rec, catalog.TopicProvisioningEvents)
	want := cloudevent.DerivedID(in, catalog.ProvisioningCompleted)
	if len(ids) != 2 || ids[0] != want || ids[1] != want || types[0] != catalog.ProvisioningCompleted {
		t.Fatalf("published %v %v", ids, types)
	}
}

// Two versions of one subscription in flight at once: the older one reaches
// GitLab first but slowly, the newer one right after. The newer one must be
// what GitLab ends with, whatever order the calls would have landed in.
func TestConcurrentVersionsNeverLeaveAnOlderOneAtGitLab(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	fx.handle(t, subscriptionEvent(t, "act-c", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSaaS)))
	renewed := snapshot("active", 2, catalog.DeploymentSaaS)
	renewed.TermStart, renewed.TermEnd = renewed.TermEnd, renewed.TermEnd.AddDate(1, 0, 0)
	v2 := subscriptionEvent(t, "renew-c", catalog.SubscriptionRenewed, renewed)
	v3 := subscriptionEvent(t, "cancel-c", catalog.SubscriptionCanceled, snapshot("canceled", 3, catalog.DeploymentSaaS))

	fx.gl.DelayNext(1, 500*time.Millisecond) // v2's first call to GitLab is slow
	v2done := make(chan error, 1)
	go func() { v2done <- fx.f.Handle(context.Background(), v2) }()
	// v3 arrives while v2 is in flight.
	deadline := time.Now().Add(200 * time.Millisecond)
	for len(fx.gl.Calls()) < 3 && time.Now().Before(deadline) { // act's GET+POST, then v2's GET
		time.Sleep(5 * time.Millisecond)
	}
	v3err := fx.f.Handle(context.Background(), v3)
	if err := <-v2done; err != nil {
		t.Fatalf("v2: %v", err)
	}
	redeliverUntilAcked(t, fx, v3, v3err)
	fx.handle(t, v2) // a late duplicate of the older version changes nothing

	got, _ := fx.gl.Provisioned("ns-42")
	bp, _ := got["base_product"].(map[string]any)
	if bp["plan_code"] != "free" || bp["purchase_xid"] != "cs_1-v3" {
		t.Fatalf("GitLab ends with %v, want version 3 (free)", bp)
	}
	posts := fx.gl.Provisions()
	if last := baseProduct(posts[len(posts)-1]); last["purchase_xid"] != "cs_1-v3" {
		t.Fatalf("last provisioning call was %v", last["purchase_xid"])
	}
	if e := fx.entitlement(t, "sub-cs_1"); e.Version != 3 || e.Status != EntitlementRevoked {
		t.Fatalf("entitlement %+v", e)
	}
}

// redeliverUntilAcked plays Pub/Sub: a delivery that failed comes again
// until it is acknowledged.
func redeliverUntilAcked(t *testing.T, fx fixture, e event.Event, err error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for err != nil {
		if time.Now().After(deadline) {
			t.Fatalf("%s never acknowledged: %v", e.ID(), err)
		}
		time.Sleep(20 * time.Millisecond)
		err = fx.f.Handle(context.Background(), e)
	}
}

// crashedAfterTheCall does what a delivery of snap that crashed between
// GitLab's answer and its commit did: the version claimed, the call made,
// nothing committed.
func (fx fixture) crashedAfterTheCall(t *testing.T, snap catalog.SubscriptionSnapshot) {
	t.Helper()
	if err := fx.st.DB.Set(context.Background(), store.Versions, Name+"_"+snap.ID, map[string]any{"version": snap.Version}); err != nil {
		t.Fatal(err)
	}
	if err := fx.f.d.GitLab.Provision(context.Background(), "ns-42", gitlabRequest(Plan(snap), snap)); err != nil {
		t.Fatal(err)
	}
}

// A first delivery of a version that changes the grant asks GitLab nothing
// before its call: no earlier delivery can have sent it. A redelivery after
// a failed call (the version attempted) asks first, and so does a version
// granting what the last one did (GitLab may hold it: no call then).
func TestOnlyAVersionGitLabMayHoldAsksWhatItHolds(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	in := subscriptionEvent(t, "act-1", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSaaS))
	fx.handle(t, in)
	reads := func() (n int) {
		for _, c := range fx.gl.Calls() {
			if c.Method == http.MethodGet {
				n++
			}
		}
		return n
	}
	if n := reads(); n != 0 {
		t.Fatalf("a first delivery read GitLab %d times before its call, want none", n)
	}
	fx.gl.FailNext(1, http.StatusServiceUnavailable)
	more := snapshot("active", 2, catalog.DeploymentSaaS)
	more.Order.Seats = 12
	next := subscriptionEvent(t, "chg-2", catalog.SubscriptionChanged, more)
	if err := fx.f.Handle(context.Background(), next); err == nil {
		t.Fatal("Handle = nil while GitLab answered 503, want an error (redeliver)")
	}
	if n := reads(); n != 0 {
		t.Fatalf("a first delivery of new seats read GitLab %d times before its call, want none", n)
	}
	fx.handle(t, next)
	if n := reads(); n != 2 {
		t.Fatalf("the redelivery read GitLab %d times, want its subscription and limits (2)", n)
	}
	same := more
	same.Version = 3
	fx.handle(t, subscriptionEvent(t, "chg-3", catalog.SubscriptionChanged, same))
	if n, calls := reads(), len(fx.gl.Provisions()); n != 4 || calls != 3 {
		t.Fatalf("a version granting the same: %d reads, %d provisioning calls in all; want 4 and 3 (no call for it)", n, calls)
	}
}

// A crash between GitLab's answer and the commit leaves GitLab provisioned
// and nothing recorded: the redelivery finds GitLab already holding the plan
// and does not call it again.
func TestRedeliveryAfterACrashBeforeCommitDoesNotProvisionTwice(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	snap := snapshot("active", 1, catalog.DeploymentSaaS)
	fx.crashedAfterTheCall(t, snap)
	fx.handle(t, subscriptionEvent(t, "act-crash", catalog.SubscriptionActivated, snap))
	if n := len(fx.gl.Provisions()); n != 1 {
		t.Fatalf("%d provisioning calls, want the crashed one only", n)
	}
	if e := fx.entitlement(t, "sub-cs_1"); e.Status != EntitlementActive || e.Version != 1 {
		t.Fatalf("entitlement %+v", e)
	}
}

func TestSnapshotWithoutIDOrVersionIsDeadLettered(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	noID := snapshot("active", 1, catalog.DeploymentSaaS)
	noID.ID = ""
	for i, snap := range []catalog.SubscriptionSnapshot{
		snapshot("active", 0, catalog.DeploymentSaaS), snapshot("active", -1, catalog.DeploymentSaaS), noID,
	} {
		in := subscriptionEvent(t, fmt.Sprintf("act-bad-%d", i), catalog.SubscriptionActivated, snap)
		if err := fx.f.Handle(context.Background(), in); err != nil {
			t.Fatalf("%d: Handle = %v, want nil (acknowledged)", i, err)
		}
		dl, found := storetest.Lookup[consumer.DeadLetter](t, fx.st, store.DeadLetters, Name+"_"+cloudevent.Key(in))
		if !found || dl.EventID != in.ID() || !strings.Contains(dl.Reason, "without id or version") {
			t.Errorf("%d: dead letter = %+v (found %v)", i, dl, found)
		}
	}
	if dead := fx.rec.On(deadLetterTopic); len(dead) != 3 {
		t.Fatalf("dead-letter topic got %v, want 3", dead)
	}
	if ok, failed := fx.calls(t); ok+failed != 0 {
		t.Errorf("GitLab called: ok=%d failed=%d", ok, failed)
	}
	if _, found := storetest.Lookup[Entitlement](t, fx.st, store.Entitlements, "sub-cs_1"); found {
		t.Error("entitlement recorded for a snapshot without a version")
	}
}

func provisionHash(c testdouble.Call, name string) (map[string]any, bool) {
	p, _ := c.Body["provision"].(map[string]any)
	h, ok := p[name].(map[string]any)
	return h, ok
}

// A subscription change whose only difference is a bought pack reaches
// GitLab, although the base product GitLab holds is unchanged; the same
// event again calls GitLab no more.
func TestPackChangeReachesGitLab(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name        string
		buy         func(*catalog.Order)
		hash, field string
		want        float64
	}{
		{"storage", func(o *catalog.Order) { o.StorageGB = 50 }, "storage", "additional_purchased_storage_size", 50 * 1024},
		{"compute minutes", func(o *catalog.Order) { o.ComputeMinutes = 9000 }, "compute_minutes", "extra_shared_runners_minutes_limit", 9000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := setup(t)
			fx.handle(t, subscriptionEvent(t, "act-1", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSaaS)))
			changed := snapshot("active", 2, catalog.DeploymentSaaS)
			tt.buy(&changed.Order)
			in := subscriptionEvent(t, "chg-2", catalog.SubscriptionChanged, changed)
			fx.handle(t, in)

			calls := fx.gl.Provisions()
			if len(calls) != 2 {
				t.Fatalf("%d provisioning calls, want 2 (activation, then the pack)", len(calls))
			}
			if h, _ := provisionHash(calls[1], tt.hash); h[tt.field] != tt.want {
				t.Errorf("%s = %v, want %s %v", tt.hash, h, tt.field, tt.want)
			}
			ns, _ := fx.gl.Namespace("ns-42")
			if ns.Limits[tt.field] != tt.want {
				t.Errorf("GitLab holds %v, want %s %v", ns.Limits, tt.field, tt.want)
			}
			if e := fx.entitlement(t, "sub-cs_1"); e.Version != 2 || e.Status != EntitlementActive {
				t.Errorf("entitlement = %+v", e)
			}

			fx.handle(t, in) // redelivery
			if n := len(fx.gl.Provisions()); n != 2 {
				t.Errorf("redelivery made %d provisioning calls in all, want 2", n)
			}
		})
	}
}

// A crash after GitLab applied a pack but before the commit: the redelivery
// finds GitLab holding the pack as well as the plan, and does not call again.
func TestRedeliveryAfterACrashFindsThePackApplied(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	fx.handle(t, subscriptionEvent(t, "act-1", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSaaS)))
	changed := snapshot("active", 2, catalog.DeploymentSaaS)
	changed.Order.StorageGB, changed.Order.ComputeMinutes = 50, 9000
	fx.crashedAfterTheCall(t, changed)
	fx.handle(t, subscriptionEvent(t, "chg-2", catalog.SubscriptionChanged, changed))
	if n := len(fx.gl.Provisions()); n != 2 {
		t.Fatalf("%d provisioning calls, want 2 (activation and the crashed one)", n)
	}
	if e := fx.entitlement(t, "sub-cs_1"); e.Version != 2 || e.StorageGB != 50 {
		t.Errorf("entitlement = %+v", e)
	}
}

// Suspension, cancellation and expiry take the bought storage and compute
// minutes away along with the plan.
func TestRevocationRemovesTheExtras(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ status, typ string }{
		{"canceled", catalog.SubscriptionCanceled},
		{"suspended", catalog.SubscriptionSuspended},
		{"expired", catalog.SubscriptionExpired},
	} {
		t.Run(tt.status, func(t *testing.T) {
			t.Parallel()
			fx := setup(t)
			fx.handle(t, subscriptionEvent(t, "act-1", catalog.SubscriptionActivated, snapshot("active", 1, catalog.DeploymentSaaS)))
			if ns, _ := fx.gl.Namespace("ns-42"); ns.Limits["additional_purchased_storage_size"] != float64(20*1024) ||
				ns.Limits["extra_shared_runners_minutes_limit"] != float64(5000) {
				t.Fatalf("packs not provisioned: %v", ns.Limits)
			}
			fx.handle(t, subscriptionEvent(t, "rev-2", tt.typ, snapshot(tt.status, 2, catalog.DeploymentSaaS)))

			calls := fx.gl.Provisions()
			if len(calls) != 2 {
				t.Fatalf("%d provisioning calls, want 2", len(calls))
			}
			last := calls[1]
			if bp := baseProduct(last); bp["plan_code"] != "free" || bp["seats"] != float64(0) {
				t.Errorf("base_product = %v", bp)
			}
			st, ok := provisionHash(last, "storage")
			if v, sent := st["additional_purchased_storage_ends_on"]; !ok || st["additional_purchased_storage_size"] != float64(0) || !sent || v != nil {
				t.Errorf("storage = %v (sent %v), want size 0 and ends_on null", st, ok)
			}
			if cm, ok := provisionHash(last, "compute_minutes"); !ok || cm["extra_shared_runners_minutes_limit"] != float64(0) {
				t.Errorf("compute_minutes = %v (sent %v), want extra 0", cm, ok)
			}
			ns, _ := fx.gl.Namespace("ns-42")
			if ns.Limits["additional_purchased_storage_size"] != float64(0) || ns.Limits["additional_purchased_storage_ends_on"] != nil ||
				ns.Limits["extra_shared_runners_minutes_limit"] != float64(0) {
				t.Errorf("GitLab still holds extras: %v", ns.Limits)
			}
			if e := fx.entitlement(t, "sub-cs_1"); e.Status != EntitlementRevoked || e.StorageGB != 0 || e.ComputeMinutes != 0 {
				t.Errorf("entitlement = %+v", e)
			}
		})
	}
}
