package seatusage

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/clock"
	"fulfillment/shared/domain/subscription"

	"fulfillment/shared/testsupport/storetest"
)

func TestMain(m *testing.M) { storetest.RunTests(m) }

var (
	key = []byte("seat-usage-test-key")
	t0  = time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
)

type fixture struct {
	st  *store.Store
	url string
}

func setup(t testing.TB) fixture {
	t.Helper()
	st := storetest.Open(t, "seats")
	srv := httptest.NewServer(New(Deps{Store: st, TokenKey: key, Clock: clock.Func(func() time.Time { return t0 }), Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	return fixture{st: st, url: srv.URL}
}

func (fx fixture) seed(t *testing.T, id, namespace string, status subscription.Status) {
	t.Helper()
	o := catalog.Order{PlanCode: "premium", Seats: 10, Deployment: catalog.DeploymentSaaS, NamespaceID: namespace, AutoRenew: true, TermMonths: 12}
	s, _, err := subscription.Purchase(id, "cs_"+id, o, catalog.Customer{}, true, t0)
	if err != nil {
		t.Fatal(err)
	}
	s.Status = status
	if err := fx.st.DB.Set(context.Background(), store.Subscriptions, id, s); err != nil {
		t.Fatal(err)
	}
}

func (fx fixture) report(t *testing.T, token string, r Report) (int, Answer) {
	t.Helper()
	body, _ := json.Marshal(r)
	req, _ := http.NewRequest(http.MethodPost, fx.url, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a Answer
	_ = json.NewDecoder(resp.Body).Decode(&a)
	return resp.StatusCode, a
}

func TestLateDuplicateAndOutOfOrderReportsKeepTheTermMaximum(t *testing.T) {
	fx := setup(t)
	fx.seed(t, "old", "ns-1", subscription.Expired) // a past subscription of the same namespace
	fx.seed(t, "sub-1", "ns-1", subscription.Active)
	tok := Token(key, "namespace:ns-1")
	for _, r := range []struct {
		date  string
		users int
	}{{"2026-02-03", 12}, {"2026-02-01", 11}, {"2026-02-05", 14}, {"2026-02-03", 12}, {"2026-02-05", 14}, {"2026-01-10", 30}, {"2026-02-04", 13}} {
		if code, _ := fx.report(t, tok, Report{Date: r.date, NamespaceID: "ns-1", BillableUsersCount: r.users, MaxHistoricalUserCount: r.users}); code != http.StatusOK {
			t.Fatalf("report %s answered %d", r.date, code)
		}
	}
	s, err := fx.st.Subscription(context.Background(), nil, "sub-1")
	if err != nil {
		t.Fatal(err)
	}
	if s.MaxSeatsUsed != 14 || s.SeatsOwed != 4 {
		t.Fatalf("max seats used %d, owed %d; want 14 and 4 (the report before the term ignored)", s.MaxSeatsUsed, s.SeatsOwed)
	}
	docs, err := fx.st.DB.Query(context.Background(), docstore.Query{Collection: SeatReports})
	if err != nil || len(docs) != 5 {
		t.Fatalf("%d distinct daily reports kept, want 5 (%v)", len(docs), err)
	}
}

func TestReportsNeedTheTargetsOwnToken(t *testing.T) {
	fx := setup(t)
	fx.seed(t, "sub-2", "ns-2", subscription.Active)
	r := Report{Date: "2026-02-01", NamespaceID: "ns-2", BillableUsersCount: 50}
	for name, tok := range map[string]string{"none": "", "another namespace's": Token(key, "namespace:ns-3"), "another key's": Token([]byte("x"), "namespace:ns-2")} {
		if code, _ := fx.report(t, tok, r); code != http.StatusUnauthorized {
			t.Errorf("%s token: %d, want 401", name, code)
		}
	}
	if code, _ := fx.report(t, Token(key, "namespace:ns-2"), Report{Date: "yesterday", NamespaceID: "ns-2"}); code != http.StatusBadRequest {
		t.Errorf("bad date: %d, want 400", code)
	}
	if code, _ := fx.report(t, Token(key, "namespace:ns-9"), Report{Date: "2026-02-01", NamespaceID: "ns-9", BillableUsersCount: 1}); code != http.StatusNotFound {
		t.Errorf("unknown namespace: %d, want 404", code)
	}
	if s, _ := fx.st.Subscription(context.Background(), nil, "sub-2"); s.MaxSeatsUsed != 0 {
		t.Fatalf("a refused report counted: max %d", s.MaxSeatsUsed)
	}
}

func TestSeatCountsOutsideTheLimitAreRefused(t *testing.T) {
	fx := setup(t)
	fx.seed(t, "sub-3", "ns-3", subscription.Active)
	tok := Token(key, "namespace:ns-3")
	ctx := context.Background()
	before, err := fx.st.Subscription(ctx, nil, "sub-3")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name              string
		users, historical int
	}{
		{"max int users", math.MaxInt64, 0},
		{"one over the limit", catalog.MaxSeats + 1, 0},
		{"negative users", -1, 0},
		{"max int historical", 12, math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _ := fx.report(t, tok, Report{Date: "2026-02-01", NamespaceID: "ns-3", BillableUsersCount: tc.users, MaxHistoricalUserCount: tc.historical})
			if code != http.StatusBadRequest {
				t.Fatalf("answered %d, want 400", code)
			}
		})
	}
	after, err := fx.st.Subscription(ctx, nil, "sub-3")
	if err != nil {
		t.Fatal(err)
	}
	if after.MaxSeatsUsed != before.MaxSeatsUsed || after.SeatsOwed != before.SeatsOwed || after.Version != before.Version || !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Fatalf("a refused report changed the subscription: max %d owed %d version %d", after.MaxSeatsUsed, after.SeatsOwed, after.Version)
	}
	if docs, err := fx.st.DB.Query(ctx, docstore.Query{Collection: SeatReports}); err != nil || len(docs) != 0 {
		t.Fatalf("%d refused reports kept (%v)", len(docs), err)
	}
	// The limit itself is a count like any other.
	if code, a := fx.report(t, tok, Report{Date: "2026-02-01", NamespaceID: "ns-3", BillableUsersCount: catalog.MaxSeats}); code != http.StatusOK || a.MaxSeatsUsed != catalog.MaxSeats {
		t.Fatalf("a report at the limit: %d %+v", code, a)
	}
}

// An instance's usage counts only with its license key behind it, so a
// bearer-token report naming an instance is refused, pointing to the seat
// links, and counts for nothing even with a token derived for it.
func TestAnInstancesReportIsSentToTheSeatLinks(t *testing.T) {
	fx := setup(t)
	o := catalog.Order{PlanCode: "premium", Seats: 10, Deployment: catalog.DeploymentSelfManaged, InstanceID: "inst-1", AutoRenew: true, TermMonths: 12}
	s, _, err := subscription.Purchase("sub-sm", "cs_sub-sm", o, catalog.Customer{}, true, t0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := fx.st.DB.Set(ctx, store.Subscriptions, "sub-sm", s); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(Report{Date: "2026-02-01", InstanceID: "inst-1", BillableUsersCount: 14, MaxHistoricalUserCount: 14})
	req, _ := http.NewRequest(http.MethodPost, fx.url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+Token(key, "instance:inst-1"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&answer)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(answer["error"], "/api/v1/seat_links") {
		t.Fatalf("instance report answered %d %q, want 400 naming the seat links", resp.StatusCode, answer["error"])
	}
	got, err := fx.st.Subscription(ctx, nil, "sub-sm")
	if err != nil {
		t.Fatal(err)
	}
	if got.MaxSeatsUsed != 0 || got.SeatsOwed != 0 {
		t.Fatalf("a refused instance report counted: max %d, owed %d", got.MaxSeatsUsed, got.SeatsOwed)
	}
	if docs, err := fx.st.DB.Query(ctx, docstore.Query{Collection: SeatReports}); err != nil || len(docs) != 0 {
		t.Fatalf("%d seat reports stored (%v), want 0", len(docs), err)
	}
}
