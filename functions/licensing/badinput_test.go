package licensing

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/license"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/testsupport/gitlabinstance"
)

func (fx *fixture) count(t *testing.T, collection string) int {
	t.Helper()
	docs, err := fx.st.DB.Query(context.Background(), docstore.Query{Collection: collection})
	if err != nil {
		t.Fatal(err)
	}
	return len(docs)
}

func gql(query string, vars map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return b
}

func TestGraphQLBadInputIsAnsweredNeverA500(t *testing.T) {
	fx := setup(t, Policy{PerIPAttempts: 1000, PerIPWindow: time.Minute})
	code := fx.purchase(t, "sub-bad", 10)
	vars := func(code, instance string) map[string]any {
		return gitlabinstance.ActivateVariables(code, instance, "uniq-1")
	}
	for _, c := range []struct {
		name   string
		body   []byte
		status int
		want   string // in the body
	}{
		{"not JSON", []byte("mutation {"), http.StatusBadRequest, "malformed JSON"},
		{"empty body", nil, http.StatusBadRequest, "malformed JSON"},
		{"no query", []byte(`{"variables":{}}`), http.StatusBadRequest, "no query"},
		{"wrong JSON types", []byte(`{"query":7}`), http.StatusBadRequest, "malformed JSON"},
		{"oversized", append([]byte(`{"query":"`), bytes.Repeat([]byte("a"), maxBody+10)...), http.StatusRequestEntityTooLarge, "too large"},
		{"GraphQL syntax error", gql("mutation { cloudActivationActivate(", nil), http.StatusOK, `"errors"`},
		{"unknown field", gql("{ nope }", nil), http.StatusOK, "Cannot query field"},
		{"missing variables", gql(activateMutation, nil), http.StatusOK, `"errors"`},
		{"variable of the wrong type", gql(activateMutation, map[string]any{"activationCode": 5, "instanceIdentifier": "i", "uniqueInstanceId": "u", "automated": true, "gitlabVersion": "v", "hostname": "h"}), http.StatusOK, `"errors"`},
		{"malformed code", gql(activateMutation, vars("short", "i-1")), http.StatusOK, errInvalidCode},
		{"unknown code", gql(activateMutation, vars(strings.Repeat("A", license.CodeLength), "i-1")), http.StatusOK, errInvalidCode},
		{"code with wrong case", gql(activateMutation, vars(strings.ToLower(code[:12])+strings.ToUpper(code[12:]), "i-1")), http.StatusOK, `"errors"`},
		{"empty instance", gql(activateMutation, vars(code, "")), http.StatusOK, errInvalidInstance},
		{"path in instance", gql(activateMutation, vars(code, "a/b")), http.StatusOK, errInvalidInstance},
		{"control characters in instance", gql(activateMutation, vars(code, "a\x00b")), http.StatusOK, errInvalidInstance},
		{"deep query", gql("{"+strings.Repeat("a{", 20)+strings.Repeat("}", 21), nil), http.StatusOK, `"errors"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := fx.post(t, "/graphql", c.body)
			if status != c.status || !strings.Contains(string(body), c.want) {
				t.Fatalf("%d %s; want %d with %q", status, body, c.status, c.want)
			}
		})
	}
	if resp, err := http.Get(fx.srv.URL + "/graphql"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %v %v", resp, err)
	}
	// Nothing was bound or issued by any of it, and unknown codes stored nothing.
	cl, _, _ := fx.st.CloudLicense(context.Background(), nil, "sub-bad")
	if cl.Activated() || cl.Key != "" {
		t.Fatalf("bad input changed the cloud license: %+v", cl)
	}
	if n := fx.count(t, store.ActivationAttempts); n != 0 {
		t.Fatalf("%d attempt records for codes that are not ours", n)
	}
}

// TestOlderGitLabsActivationDocumentStillActivates: instances on GitLab
// versions before uniqueInstanceId and newSubscription send the older
// document; it activates, and the license carries no unique id.
func TestOlderGitLabsActivationDocumentStillActivates(t *testing.T) {
	fx := setup(t, Policy{})
	code := fx.purchase(t, "sub-legacy", 10)
	vars := gitlabinstance.ActivateVariables(code, "uuid-legacy", "")
	delete(vars, "uniqueInstanceId")
	status, a := fx.activateWith(t, gitlabinstance.ActivateMutationLegacy, vars)
	got := a.Data.CloudActivationActivate
	if status != http.StatusOK || len(a.Errors) != 0 || len(got.Errors) != 0 || got.LicenseKey == nil || got.NewSubscription != nil {
		t.Fatalf("legacy activation: %d %+v", status, a)
	}
	if l := fx.verify(t, *got.LicenseKey); l.InstanceID != "uuid-legacy" || l.UniqueInstanceID != "" || l.Seats != 10 {
		t.Fatalf("legacy activation's license %+v", l)
	}
}

func TestActivationAttemptsAreLimitedPerCodeAndPerAddress(t *testing.T) {
	fx := setup(t, Policy{PerCodeAttempts: 3, PerCodeWindow: time.Hour, PerIPAttempts: 6, PerIPWindow: time.Minute})
	code := fx.purchase(t, "sub-rl", 10)
	if _, a := fx.activate(t, code, "uuid-owner"); a.Data.CloudActivationActivate.LicenseKey == nil {
		t.Fatalf("activation %+v", a)
	}
	// Someone else tries the code: refused, then locked out for the window.
	for i, want := range []string{errUsedElsewhere, errUsedElsewhere, errTooManyForCode} {
		if _, a := fx.activate(t, code, "uuid-thief"); len(a.Data.CloudActivationActivate.Errors) != 1 || a.Data.CloudActivationActivate.Errors[0] != want {
			t.Fatalf("attempt %d: %+v, want %q", i+2, a, want)
		}
	}
	// The next window lets the owner in again.
	fx.clock.set(fx.clock.Now().Add(time.Hour))
	if _, a := fx.activate(t, code, "uuid-owner"); a.Data.CloudActivationActivate.LicenseKey == nil {
		t.Fatalf("owner after the window: %+v", a)
	}
	// Per address: every request counts, guesses of unknown codes too. This
	// minute has seen the owner's one; five guesses fill it to the limit.
	for range 5 {
		fx.activate(t, strings.Repeat("B", license.CodeLength), "uuid-guess")
	}
	// Past it, even the owner's valid code is refused in the mutation's
	// errors (GitLab shows those to the admin; a 429 only as a connectivity
	// error), and the code is not looked at.
	status, a := fx.activate(t, code, "uuid-owner")
	if got := a.Data.CloudActivationActivate; status != http.StatusOK || got.LicenseKey != nil || len(got.Errors) != 1 || got.Errors[0] != errTooManyFromHere {
		t.Fatalf("past the per-address limit: %d %+v", status, a)
	}
	var window map[string]any
	key := license.HashCode(pepper, code) + "_" + fx.clock.Now().Truncate(time.Hour).UTC().Format("20060102T150405")
	if err := fx.st.DB.Get(context.Background(), store.ActivationAttempts, key, &window); err != nil || fmt.Sprint(window["attempts"]) != "1" {
		t.Fatalf("the code's attempts this window: %v %v; want the owner's one only", window, err)
	}
}

func TestActivationRefusesUnpaidAndEndedSubscriptions(t *testing.T) {
	fx := setup(t, Policy{})
	code := fx.purchase(t, "sub-end", 10)
	fx.change(t, "sub-end", "expire", func(s *subscription.Subscription) subscription.Change {
		s.Status = subscription.Expired
		return subscription.Change{From: subscription.Active, To: subscription.Expired}
	})
	if _, a := fx.activate(t, code, "uuid-x"); len(a.Data.CloudActivationActivate.Errors) != 1 || a.Data.CloudActivationActivate.Errors[0] != errEnded {
		t.Fatalf("expired: %+v", a)
	}
	code2 := fx.purchase(t, "sub-pend", 10)
	fx.change(t, "sub-pend", "pending", func(s *subscription.Subscription) subscription.Change {
		s.Status = subscription.Pending
		return subscription.Change{From: subscription.Active, To: subscription.Pending}
	})
	if _, a := fx.activate(t, code2, "uuid-x"); len(a.Data.CloudActivationActivate.Errors) != 1 || a.Data.CloudActivationActivate.Errors[0] != errNotPaid {
		t.Fatalf("pending: %+v", a)
	}
}

func TestSeatLinkBadInputAndBadKeys(t *testing.T) {
	fx := setup(t, Policy{})
	key := fx.activated(t, "sub-sl", 10, "uuid-sl")
	now := fx.clock.Now()
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	forged, _ := license.Sign(license.License{SubscriptionID: "sub-sl", InstanceID: "uuid-sl", Serial: 1, Status: license.StatusActive}, other)
	future, _ := license.Sign(license.License{SubscriptionID: "sub-sl", InstanceID: "uuid-sl", Serial: 99, Status: license.StatusActive}, fx.key)
	raw := func(m map[string]any) []byte { b, _ := json.Marshal(m); return b }
	for _, c := range []struct {
		name   string
		body   []byte
		status int
		want   string
	}{
		{"not JSON", []byte("{"), http.StatusBadRequest, "malformed"},
		{"wrong types", []byte(`{"license_key":1}`), http.StatusBadRequest, "malformed"},
		{"oversized", bytes.Repeat([]byte(" "), maxBody+1), http.StatusRequestEntityTooLarge, "too large"},
		{"no key", raw(map[string]any{"timestamp": now.Format(time.RFC3339), "billable_users_count": 3}), http.StatusBadRequest, "license_key"},
		{"negative users", raw(map[string]any{"timestamp": now.Format(time.RFC3339), "license_key": key, "billable_users_count": -1}), http.StatusBadRequest, "within"},
		{"bad timestamp", raw(map[string]any{"timestamp": "yesterday", "license_key": key, "billable_users_count": 3}), http.StatusBadRequest, "ISO 8601"},
		{"no day", raw(map[string]any{"license_key": key, "billable_users_count": 3}), http.StatusBadRequest, "timestamp"},
		{"future day", seatLinkBody(key, "uuid-sl", now.AddDate(0, 0, 5), 3), http.StatusBadRequest, "plausible"},
		{"garbage key", seatLinkBody("not-a-key", "uuid-sl", now, 3), http.StatusUnprocessableEntity, errUnknownKey},
		{"forged key", seatLinkBody(forged.Key(), "uuid-sl", now, 3), http.StatusUnprocessableEntity, errUnknownKey},
		{"serial never issued", seatLinkBody(future.Key(), "uuid-sl", now, 3), http.StatusUnprocessableEntity, errUnknownKey},
		{"another instance", seatLinkBody(key, "uuid-other", now, 3), http.StatusUnprocessableEntity, errNotActivated},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := fx.post(t, "/api/v1/seat_links", c.body)
			if status != c.status || !strings.Contains(string(body), c.want) {
				t.Fatalf("%d %s; want %d with %q", status, body, c.status, c.want)
			}
		})
	}
	if n := fx.count(t, store.SeatReports); n != 0 {
		t.Fatalf("%d seat reports stored from refused links", n)
	}
	if s := fx.sub(t, "sub-sl"); s.MaxSeatsUsed != 0 {
		t.Fatalf("refused links counted: %d", s.MaxSeatsUsed)
	}
	// GitLab sends billable_users_count: null before the instance has
	// historical data: a sync (200, its time recorded) with nothing to
	// count or store, not a 400 its worker would retry for two days.
	fx.clock.set(now.Add(time.Hour))
	noCount := raw(map[string]any{"timestamp": now.Format(time.RFC3339), "license_key": key, "billable_users_count": nil,
		"max_historical_user_count": nil, "instance_id": "uuid-sl"})
	if status, body := fx.post(t, "/api/v1/seat_links", noCount); status != http.StatusOK || !strings.Contains(string(body), `"counted":false`) {
		t.Fatalf("null billable_users_count: %d %s", status, body)
	}
	if cl, _, _ := fx.st.CloudLicense(context.Background(), nil, "sub-sl"); !cl.LastSyncAt.Equal(now.Add(time.Hour)) || fx.count(t, store.SeatReports) != 0 {
		t.Fatalf("after a link without a count: last sync %s, %d reports", cl.LastSyncAt, fx.count(t, store.SeatReports))
	}
	fx.clock.set(now)
	// An older GitLab's body: date and active_users, unknown fields ignored.
	old := raw(map[string]any{"date": "2026-01-14", "license_key": key, "active_users": 6, "max_historical_user_count": 6, "instance_id": "uuid-sl", "some_future_field": true})
	if status, body := fx.post(t, "/api/v1/seat_links", old); status != http.StatusOK {
		t.Fatalf("old format: %d %s", status, body)
	}
	// ... dated before the term: recorded for audit, counted for nothing.
	if s := fx.sub(t, "sub-sl"); s.MaxSeatsUsed != 0 {
		t.Fatalf("report before the term counted: %d", s.MaxSeatsUsed)
	}
	old = raw(map[string]any{"date": "2026-01-15", "license_key": key, "active_users": 6, "instance_id": "uuid-sl"})
	if status, _ := fx.post(t, "/api/v1/seat_links", old); status != http.StatusOK || fx.sub(t, "sub-sl").MaxSeatsUsed != 6 {
		t.Fatalf("old format in the term: %d, max %d", status, fx.sub(t, "sub-sl").MaxSeatsUsed)
	}
	// A replayed old report changes nothing.
	for range 2 {
		if status, ans, _ := fx.sync(t, key, "uuid-sl", on(t, "2026-01-15"), 2); status != http.StatusOK || ans.Counted || ans.MaxSeatsUsed != 6 {
			t.Fatalf("replay: %d %+v", status, ans)
		}
	}
	if resp, err := http.Get(fx.srv.URL + "/api/v1/seat_links"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %v %v", resp, err)
	}
}

func TestUsageFileBadInput(t *testing.T) {
	for name, file := range map[string]string{
		"empty":             "",
		"no header":         "2026-01-16,11\n",
		"bad number":        "date,billable_users_count\n2026-01-16,eleven\n",
		"bad date":          "date,billable_users_count\n16/01/2026,11\n",
		"negative":          "date,billable_users_count\n2026-01-16,-1\n",
		"too many":          "date,billable_users_count\n2026-01-16,99999999\n",
		"JSON of no rows":   `{"usage":[]}`,
		"malformed JSON":    `{"usage":[`,
		"JSON with strings": `[{"date":"2026-01-16","billable_users_count":"11"}]`,
	} {
		if days, err := ParseUsageFile(strings.NewReader(file)); err == nil {
			t.Errorf("%s: parsed %+v", name, days)
		}
	}
	days, err := ParseUsageFile(strings.NewReader(`{"usage":[{"date":"2026-01-16","billable_users_count":11,"max_historical_user_count":12}]}`))
	if err != nil || len(days) != 1 || days[0].MaxHistoricalUserCount != 12 {
		t.Fatalf("JSON: %+v %v", days, err)
	}
	if _, err := ParseUsageFile(strings.NewReader(strings.Repeat("x", maxUsageFile+2))); err == nil {
		t.Fatal("oversized file parsed")
	}
}

func TestSyncCheckEndpoint(t *testing.T) {
	fx := setup(t, Policy{})
	if resp, err := http.Get(fx.srv.URL + "/tasks/sync-check"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %v %v", resp, err)
	}
	status, body := fx.post(t, "/tasks/sync-check", nil)
	if status != http.StatusOK || !strings.Contains(string(body), `"checked":0`) {
		t.Fatalf("%d %s", status, body)
	}
}
