package licensing

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
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

var pepper = []byte("test-pepper")

// activateMutation is the document GitLab's instances send to activate.
const activateMutation = gitlabinstance.ActivateMutation

type movingClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *movingClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *movingClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

type fixture struct {
	st    *store.Store
	rec   *pubsub.Recorder
	key   ed25519.PrivateKey
	clock *movingClock
	prov  *provisioning.Function
	f     *Function
	srv   *httptest.Server
}

func setup(t testing.TB, p Policy) *fixture {
	t.Helper()
	st := storetest.Open(t, "lic")
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	rec := &pubsub.Recorder{}
	c := &movingClock{t: time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)}
	log := slog.New(slog.DiscardHandler)
	f := New(Deps{Store: st, Publisher: rec, SigningKey: key, CodePepper: pepper, Policy: p, Clock: clock.Func(c.Now), Logger: log})
	prov := provisioning.New(provisioning.Deps{Store: st, Publisher: rec, LicenseKey: key, CodePepper: pepper, Logger: log, DeadLetterTopic: "dl"})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return &fixture{st: st, rec: rec, key: key, clock: c, prov: prov, f: f, srv: srv}
}

func (fx *fixture) pub() ed25519.PublicKey { return fx.key.Public().(ed25519.PublicKey) }

// purchase stores a paid self-managed subscription and runs provisioning on
// its activation, as the pipeline does; it returns the announced code.
func (fx *fixture) purchase(t *testing.T, id string, seats int) string {
	t.Helper()
	o := catalog.Order{PlanCode: "premium", Seats: seats, Deployment: catalog.DeploymentSelfManaged, InstanceID: "ordered-" + id, AutoRenew: true, TermMonths: 12}
	s, _, err := subscription.Purchase(id, "cs_"+id, o, catalog.Customer{Email: "admin@example.com", Name: "Ada"}, true, fx.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.st.DB.Set(context.Background(), store.Subscriptions, id, s); err != nil {
		t.Fatal(err)
	}
	e, err := cloudevent.New(context.Background(), "act-"+id, catalog.SourcePaymentResult, catalog.SubscriptionActivated, id, s.Snapshot("purchased"))
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.prov.Handle(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	for _, ev := range fx.rec.On(catalog.TopicSubscriptionEvents) {
		var c catalog.ActivationCodeIssued
		if ev.Type() == catalog.LicenseActivationCodeIssued && cloudevent.DecodeData(ev, &c) == nil && c.SubscriptionID == id {
			return c.ActivationCode
		}
	}
	t.Fatalf("no activation code announced for %s", id)
	return ""
}

func (fx *fixture) post(t *testing.T, path string, body []byte) (int, []byte) {
	t.Helper()
	resp, b := fx.postFrom(t, "", path, body)
	return resp.StatusCode, b
}

// postFrom posts as a caller whose address Cloud Run's front end recorded
// in X-Forwarded-For (none when forwardedFor is empty).
func (fx *fixture) postFrom(t *testing.T, forwardedFor, path string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, fx.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", forwardedFor)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

type activateAnswer struct {
	Data struct {
		CloudActivationActivate struct {
			LicenseKey          *string           `json:"licenseKey"`
			FutureSubscriptions []json.RawMessage `json:"futureSubscriptions"`
			NewSubscription     *bool             `json:"newSubscription"`
			Errors              []string          `json:"errors"`
		} `json:"cloudActivationActivate"`
	} `json:"data"`
	Errors []struct {
		Message string `json:"message"`
	} `json:"errors"`
}

// activate sends GitLab's current mutation with GitLab's variables; the
// instance's unique id is "uniq-" + instance.
func (fx *fixture) activate(t *testing.T, code, instance string) (int, activateAnswer) {
	t.Helper()
	return fx.activateWith(t, activateMutation, gitlabinstance.ActivateVariables(code, instance, "uniq-"+instance))
}

// activated buys a self-managed subscription of seats, activates it from
// instance and returns the license key the activation answered.
func (fx *fixture) activated(t *testing.T, id string, seats int, instance string) string {
	t.Helper()
	status, a := fx.activate(t, fx.purchase(t, id, seats), instance)
	key := a.Data.CloudActivationActivate.LicenseKey
	if status != http.StatusOK || key == nil {
		t.Fatalf("activation of %s answered %d %+v", id, status, a)
	}
	return *key
}

func (fx *fixture) activateWith(t *testing.T, document string, vars map[string]any) (int, activateAnswer) {
	t.Helper()
	status, b := fx.post(t, "/graphql", gql(document, vars))
	var a activateAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("activation answer %d %s: %v", status, b, err)
	}
	return status, a
}

// seatLink sends what Gitlab::SeatLinkData#as_json sends.
func seatLinkBody(key, instance string, ts time.Time, users int) []byte {
	return gitlabinstance.SeatLinkBody(key, instance, ts, &users)
}

func (fx *fixture) sync(t *testing.T, key, instance string, ts time.Time, users int) (int, SeatLinkAnswer, string) {
	t.Helper()
	status, b := fx.post(t, "/api/v1/seat_links", seatLinkBody(key, instance, ts, users))
	var a SeatLinkAnswer
	_ = json.Unmarshal(b, &a)
	return status, a, string(b)
}

func (fx *fixture) sub(t *testing.T, id string) *subscription.Subscription {
	t.Helper()
	s, err := fx.st.Subscription(context.Background(), nil, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (fx *fixture) change(t *testing.T, id, key string, do func(*subscription.Subscription) subscription.Change) {
	t.Helper()
	if _, _, err := fx.st.UpdateSubscription(context.Background(), id, store.Cause{Type: "test", ID: key, Key: key}, func(s *subscription.Subscription) (subscription.Change, error) {
		return do(s), nil
	}); err != nil {
		t.Fatal(err)
	}
}

func (fx *fixture) verify(t *testing.T, key string) license.License {
	t.Helper()
	l, err := license.VerifyKey(key, fx.pub())
	if err != nil {
		t.Fatalf("license key does not verify: %v", err)
	}
	return l
}

func (fx *fixture) published(topic, typ string) int {
	n := 0
	for _, e := range fx.rec.On(topic) {
		if e.Type() == typ {
			n++
		}
	}
	return n
}

func on(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		t.Fatal(err)
	}
	return d.Add(10 * time.Hour)
}

var _ = fmt.Sprint
