package crmpush

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/salesforce"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/runtime/entrypoint"
	"fulfillment/shared/testsupport/emulator"
	"fulfillment/shared/testsupport/storetest"
	"fulfillment/shared/testsupport/testdouble"
)

func TestMain(m *testing.M) { storetest.RunTests(m) }

const (
	deadLetterTopic = "dead-letters"
	sfToken         = "00Dxx0000001gPL!test-token"
	subID           = "sub-cs_1"
)

type fixture struct {
	st  *store.Store
	rec *pubsub.Recorder
	sf  *testdouble.Salesforce
	f   *Function
}

func setup(t testing.TB) fixture {
	t.Helper()
	st := storetest.Open(t, "crm")
	sf, err := testdouble.StartSalesforce("127.0.0.1:0", sfToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sf.Close() })
	rec := &pubsub.Recorder{}
	f := New(Deps{
		Store: st, Publisher: rec, CRM: salesforce.NewClient(sf.URL(), sfToken, nil),
		DeadLetterTopic: deadLetterTopic, Logger: slog.New(slog.DiscardHandler),
	})
	return fixture{st: st, rec: rec, sf: sf, f: f}
}

func subscriptionEvent(t *testing.T, id, typ, status string, version int64) event.Event {
	t.Helper()
	start := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	snap := catalog.SubscriptionSnapshot{
		ID: subID, Version: version, Status: status, PurchaseID: "cs_1",
		Order:     catalog.Order{PlanCode: "ultimate", Seats: 25, Deployment: catalog.DeploymentSaaS, NamespaceID: "ns-1", AutoRenew: true, TermMonths: 12},
		Customer:  catalog.Customer{ProviderCustomerID: "cus_9", Email: "billing@example.com", Name: "Acme"},
		TermStart: start, TermEnd: start.AddDate(1, 0, 0),
	}
	e, err := cloudevent.New(context.Background(), id, catalog.SourcePaymentResult, typ, subID, snap)
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

// upserts counts the Salesforce calls by answer.
func (fx fixture) upserts() (ok, failed int) { return testdouble.Answered(fx.sf.Calls()) }

func (fx fixture) synced(t *testing.T) (Synced, bool) {
	t.Helper()
	return storetest.Lookup[Synced](t, fx.st, store.CRMSync, subID)
}

func TestActivationUpsertsAccountAndSubscription(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	fx.handle(t, subscriptionEvent(t, "act-1", catalog.SubscriptionActivated, "active", 1))

	calls := fx.sf.Calls()
	if len(calls) != 2 ||
		calls[0].Path != "/services/data/"+salesforce.APIVersion+"/sobjects/Account/"+AccountExternalID+"/cus_9" ||
		calls[1].Path != "/services/data/"+salesforce.APIVersion+"/sobjects/"+SubscriptionObject+"/"+SubscriptionExternalID+"/"+subID {
		t.Fatalf("Salesforce calls = %+v", calls)
	}
	if calls[0].Method != http.MethodPatch || calls[0].Headers["Authorization"] != "Bearer "+sfToken {
		t.Errorf("call 0 = %s %v", calls[0].Method, calls[0].Headers)
	}
	acct, ok := fx.sf.Record(AccountObject, "cus_9")
	if !ok || acct["Name"] != "Acme" || acct["Billing_Email__c"] != "billing@example.com" {
		t.Errorf("account = %v", acct)
	}
	rec, ok := fx.sf.Record(SubscriptionObject, subID)
	if !ok || rec["Status__c"] != "active" || rec["Version__c"] != float64(1) || rec["Plan__c"] != "ultimate" ||
		rec["Seats__c"] != float64(25) || rec["Term_End__c"] != "2027-03-10" {
		t.Errorf("subscription record = %v", rec)
	}
	if ref, _ := rec["Account__r"].(map[string]any); ref[AccountExternalID] != "cus_9" {
		t.Errorf("Account__r = %v", rec["Account__r"])
	}
	if s, ok := fx.synced(t); !ok || s.Version != 1 || s.Status != "active" {
		t.Errorf("crm_sync = %+v %v", s, ok)
	}
}

func TestPushDeliveryOverHTTP(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	srv := httptest.NewServer(entrypoint.Serve(fx.f, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	in := subscriptionEvent(t, "pd-3", catalog.SubscriptionPastDue, "past_due", 3)
	if code, body := emulator.Post(t, srv.URL, emulator.PushBody(in, "11")); code != http.StatusNoContent {
		t.Fatalf("push answered %d %s", code, body)
	}
	if rec, _ := fx.sf.Record(SubscriptionObject, subID); rec["Status__c"] != "past_due" {
		t.Fatalf("subscription record = %v", rec)
	}
}

func TestDuplicateDeliveryUpsertsOnce(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	in := subscriptionEvent(t, "act-dup", catalog.SubscriptionActivated, "active", 1)
	fx.handle(t, in)
	fx.handle(t, in)
	if ok, failed := fx.upserts(); ok != 2 || failed != 0 {
		t.Fatalf("upserts ok=%d failed=%d, want 2 (account and subscription) once", ok, failed)
	}
	if n := len(fx.rec.Events); n != 0 {
		t.Errorf("crm-push published on %d topics, want none", n)
	}
}

// A second event of a version Salesforce already has (another event id,
// the same snapshot) finds it synced under the lease and sends nothing.
func TestAVersionAlreadySyncedIsNotSentAgain(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	fx.handle(t, subscriptionEvent(t, "act-1", catalog.SubscriptionActivated, "active", 1))
	fx.handle(t, subscriptionEvent(t, "chg-1", catalog.SubscriptionChanged, "active", 1))
	if ok, failed := fx.upserts(); ok != 2 || failed != 0 {
		t.Fatalf("upserts ok=%d failed=%d, want 2 (account and subscription, for the first event only)", ok, failed)
	}
}

func TestOlderVersionIsNotSentOverANewer(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	fx.handle(t, subscriptionEvent(t, "can-2", catalog.SubscriptionCanceled, "canceled", 2))
	older := subscriptionEvent(t, "act-1", catalog.SubscriptionActivated, "active", 1)
	fx.handle(t, older)

	if ok, _ := fx.upserts(); ok != 2 {
		t.Fatalf("upserts = %d, want 2 (the newer version only)", ok)
	}
	if rec, _ := fx.sf.Record(SubscriptionObject, subID); rec["Status__c"] != "canceled" || rec["Version__c"] != float64(2) {
		t.Fatalf("subscription record = %v", rec)
	}
	if s, _ := fx.synced(t); s.Version != 2 {
		t.Errorf("crm_sync version = %d, want 2", s.Version)
	}
	if err := fx.st.Get(context.Background(), nil, store.Processed, Name+"_"+cloudevent.Key(older), &map[string]any{}); err != nil {
		t.Errorf("stale event not recorded as processed: %v", err)
	}
}

func TestSalesforceRefusalIsDeadLettered(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	in := subscriptionEvent(t, "act-400", catalog.SubscriptionActivated, "active", 1)
	fx.sf.FailNext(1, http.StatusBadRequest)
	if err := fx.f.Handle(context.Background(), in); err != nil {
		t.Fatalf("Handle = %v, want nil (acknowledged)", err)
	}
	var dl consumer.DeadLetter
	if err := fx.st.Get(context.Background(), nil, store.DeadLetters, Name+"_"+cloudevent.Key(in), &dl); err != nil {
		t.Fatalf("dead letter: %v", err)
	}
	if dl.EventID != in.ID() || !strings.Contains(dl.Reason, "UNKNOWN_EXCEPTION") {
		t.Errorf("dead letter = %+v", dl)
	}
	if dead := fx.rec.On(deadLetterTopic); len(dead) != 1 || dead[0].ID() != in.ID() {
		t.Fatalf("dead-letter topic got %v", dead)
	}
	if _, ok := fx.synced(t); ok {
		t.Error("crm_sync recorded although Salesforce refused")
	}
}

func TestSalesforceOutageIsRetriedAndUpsertsOnce(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	in := subscriptionEvent(t, "act-503", catalog.SubscriptionActivated, "active", 1)
	fx.sf.FailNext(1, http.StatusServiceUnavailable)
	if err := fx.f.Handle(context.Background(), in); err == nil {
		t.Fatal("Handle = nil while Salesforce answered 503, want an error (redeliver)")
	}
	if _, ok := fx.synced(t); ok {
		t.Fatal("crm_sync recorded although Salesforce failed")
	}
	if dead := fx.rec.On(deadLetterTopic); len(dead) != 0 {
		t.Fatal("a transient failure was dead-lettered")
	}
	fx.handle(t, in)
	fx.handle(t, in)
	if ok, failed := fx.upserts(); ok != 2 || failed != 1 {
		t.Fatalf("upserts ok=%d failed=%d, want 2 and 1", ok, failed)
	}
	if s, ok := fx.synced(t); !ok || s.Version != 1 {
		t.Errorf("crm_sync = %+v %v", s, ok)
	}
}

// Two versions in flight at once, the older one slow at Salesforce: the
// newer one is what Salesforce ends with.
func TestConcurrentVersionsNeverLeaveAnOlderOneInSalesforce(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	v2 := subscriptionEvent(t, "past-due-c", catalog.SubscriptionPastDue, "past_due", 2)
	v3 := subscriptionEvent(t, "cancel-c", catalog.SubscriptionCanceled, "canceled", 3)
	fx.sf.DelayNext(1, 600*time.Millisecond) // v2's account upsert is slow
	v2done := make(chan error, 1)
	go func() { v2done <- fx.f.Handle(context.Background(), v2) }()
	deadline := time.Now().Add(300 * time.Millisecond)
	for len(fx.sf.Calls()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // v2's first call is under way (recorded once answered)
		if _, ok := storetest.Lookup[map[string]any](t, fx.st, "consumer_leases", Name+"_"+subID); ok {
			break
		}
	}
	err := fx.f.Handle(context.Background(), v3)
	if e := <-v2done; e != nil {
		t.Fatalf("v2: %v", e)
	}
	for deadline := time.Now().Add(10 * time.Second); err != nil; err = fx.f.Handle(context.Background(), v3) {
		if time.Now().After(deadline) {
			t.Fatalf("v3 never acknowledged: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fx.handle(t, v2) // a late duplicate of the older version
	rec, _ := fx.sf.Record(SubscriptionObject, subID)
	if rec["Status__c"] != "canceled" || rec["Version__c"] != float64(3) {
		t.Fatalf("Salesforce ends with %v v%v, want canceled v3", rec["Status__c"], rec["Version__c"])
	}
	if s, _ := fx.synced(t); s.Version != 3 {
		t.Fatalf("crm_sync at v%d", s.Version)
	}
}

func TestSnapshotWithoutVersionIsDeadLettered(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	for _, version := range []int64{0, -1} {
		in := subscriptionEvent(t, fmt.Sprintf("act-v%d", version), catalog.SubscriptionActivated, "active", version)
		if err := fx.f.Handle(context.Background(), in); err != nil {
			t.Fatalf("version %d: Handle = %v, want nil (acknowledged)", version, err)
		}
		dl, found := storetest.Lookup[consumer.DeadLetter](t, fx.st, store.DeadLetters, Name+"_"+cloudevent.Key(in))
		if !found || dl.EventID != in.ID() || !strings.Contains(dl.Reason, "version") {
			t.Errorf("version %d: dead letter = %+v (found %v)", version, dl, found)
		}
	}
	if dead := fx.rec.On(deadLetterTopic); len(dead) != 2 {
		t.Fatalf("dead-letter topic got %v, want 2", dead)
	}
	if ok, failed := fx.upserts(); ok+failed != 0 {
		t.Errorf("Salesforce called %d times", ok+failed)
	}
	if _, ok := fx.synced(t); ok {
		t.Error("crm_sync recorded for a snapshot without a version")
	}
}

// A guest checkout (Stripe's "customer": null) still reaches Salesforce: an
// account of its own, not a dead letter for an empty external id.
func TestAGuestCheckoutGetsAnAccountOfItsOwn(t *testing.T) {
	t.Parallel()
	fx := setup(t)
	e := subscriptionEvent(t, "act-guest", catalog.SubscriptionActivated, "active", 1)
	var snap catalog.SubscriptionSnapshot
	if err := e.DataAs(&snap); err != nil {
		t.Fatal(err)
	}
	snap.Customer = catalog.Customer{Email: "guest@example.com"}
	guest, err := cloudevent.New(context.Background(), "act-guest", catalog.SourcePaymentResult, catalog.SubscriptionActivated, subID, snap)
	if err != nil {
		t.Fatal(err)
	}
	fx.handle(t, guest)
	acct, ok := fx.sf.Record(AccountObject, "guest-"+subID)
	if !ok || acct["Name"] != "Guest customer" || acct["Billing_Email__c"] != "guest@example.com" {
		t.Fatalf("guest account = %v (%v)", acct, ok)
	}
	rec, ok := fx.sf.Record(SubscriptionObject, subID)
	if !ok || rec["Status__c"] != "active" {
		t.Fatalf("subscription record = %v", rec)
	}
	if _, found := storetest.Lookup[map[string]any](t, fx.st, store.DeadLetters, Name+"_"+cloudevent.Key(guest)); found {
		t.Fatal("the guest's push was dead-lettered")
	}
}
