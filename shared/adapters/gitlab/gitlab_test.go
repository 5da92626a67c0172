package gitlab_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"fulfillment/shared/adapters/gitlab"
	"fulfillment/shared/runtime/failure"
	"fulfillment/shared/testsupport/testdouble"
)

var key = []byte("test-signing-key-32-bytes-long!!")

func startDouble(t *testing.T) *testdouble.GitLab {
	t.Helper()
	g, err := testdouble.StartGitLab("127.0.0.1:0", key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

func ultimate() gitlab.ProvisionRequest {
	return gitlab.ProvisionRequest{BaseProduct: gitlab.BaseProduct{
		PlanCode: "ultimate", Seats: 30, StartDate: "2026-01-01", EndDate: "2027-01-01",
		AutoRenew: true, PurchaseXID: "A-S00001",
	}}
}

func TestProvisionSendsGitLabBody(t *testing.T) {
	t.Parallel()
	g := startDouble(t)
	c := gitlab.NewClient(g.URL(), key, nil)

	if err := c.Provision(context.Background(), "42", ultimate()); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	calls := g.Calls()
	if len(calls) != 1 {
		t.Fatalf("got %d calls, want 1", len(calls))
	}
	call := calls[0]
	if call.Method != http.MethodPost || call.Path != "/api/v4/internal/gitlab_subscriptions/namespaces/42/provision" {
		t.Errorf("request line = %s %s", call.Method, call.Path)
	}
	if call.Headers[gitlab.TokenHeader] == "" || call.Status != http.StatusOK {
		t.Errorf("token %q, status %d", call.Headers[gitlab.TokenHeader], call.Status)
	}
	p := call.Body["provision"].(map[string]any)
	bp := p["base_product"].(map[string]any)
	want := map[string]any{
		"plan_code": "ultimate", "seats": 30.0, "start_date": "2026-01-01", "end_date": "2027-01-01",
		"auto_renew": true, "trial": false, "purchase_xid": "A-S00001",
	}
	for k, v := range want {
		if bp[k] != v {
			t.Errorf("base_product[%s] = %v, want %v", k, bp[k], v)
		}
	}
	for _, absent := range []string{"storage", "compute_minutes"} {
		if _, ok := p[absent]; ok {
			t.Errorf("%s sent although nil (leave unchanged)", absent)
		}
	}
	if _, ok := g.Provisioned("42"); !ok {
		t.Error("double did not store the provision")
	}
}

func TestProvisionExpiryAndExtras(t *testing.T) {
	t.Parallel()
	g := startDouble(t)
	c := gitlab.NewClient(g.URL(), key, nil)
	req := gitlab.ProvisionRequest{
		BaseProduct:    gitlab.BaseProduct{PlanCode: "free", Seats: 0},
		Storage:        &gitlab.Storage{AdditionalPurchasedStorageSize: 100, AdditionalPurchasedStorageEndsOn: "2027-01-01"},
		ComputeMinutes: &gitlab.ComputeMinutes{ExtraSharedRunnersMinutesLimit: 90},
	}
	if err := c.Provision(context.Background(), "7", req); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	p, _ := g.Provisioned("7")
	bp := p["base_product"].(map[string]any)
	if bp["plan_code"] != "free" || bp["seats"] != 0.0 || bp["trial"] != false {
		t.Errorf("expiry base_product = %v", bp)
	}
	if p["storage"].(map[string]any)["additional_purchased_storage_size"] != 100.0 {
		t.Errorf("storage = %v", p["storage"])
	}
	if p["compute_minutes"].(map[string]any)["extra_shared_runners_minutes_limit"] != 90.0 {
		t.Errorf("compute_minutes = %v", p["compute_minutes"])
	}
}

func TestProvisionErrorClassification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		fault     int // status the double answers first; 0 for none
		key       []byte
		issuer    string
		namespace string
		req       gitlab.ProvisionRequest
		permanent bool
		calls     int
	}{
		{name: "503 transient", fault: 503, permanent: false, calls: 1},
		{name: "429 transient", fault: 429, permanent: false, calls: 1},
		{name: "404 permanent", fault: 404, permanent: true, calls: 1},
		{name: "422 permanent", fault: 422, permanent: true, calls: 1},
		{name: "wrong key 401", key: []byte("another-key"), permanent: true, calls: 1},
		{name: "wrong issuer 401", issuer: "https://evil.example/", permanent: true, calls: 1},
		{name: "empty namespace", namespace: "-", permanent: true},
		{name: "bad date", req: gitlab.ProvisionRequest{BaseProduct: gitlab.BaseProduct{PlanCode: "premium", EndDate: "01/02/2027"}}, permanent: true},
		{name: "no plan", req: gitlab.ProvisionRequest{BaseProduct: gitlab.BaseProduct{Seats: 3}}, permanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := startDouble(t)
			k := key
			if tt.key != nil {
				k = tt.key
			}
			c := gitlab.NewClient(g.URL(), k, nil)
			if tt.issuer != "" {
				c.Issuer = tt.issuer
			}
			if tt.fault != 0 {
				g.FailNext(1, tt.fault)
			}
			ns, req := "42", ultimate()
			if tt.namespace == "-" {
				ns = ""
			}
			if tt.req.BaseProduct != (gitlab.BaseProduct{}) {
				req = tt.req
			}
			err := c.Provision(context.Background(), ns, req)
			if err == nil {
				t.Fatal("Provision succeeded, want an error")
			}
			if got := failure.IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v (err: %v)", got, tt.permanent, err)
			}
			if got := len(g.Calls()); got != tt.calls {
				t.Errorf("double got %d calls, want %d", got, tt.calls)
			}
		})
	}
}

func TestProvisionRetryAfterAndRecovery(t *testing.T) {
	t.Parallel()
	g := startDouble(t)
	c := gitlab.NewClient(g.URL(), key, nil)
	g.FailNext(1, http.StatusTooManyRequests)

	err := c.Provision(context.Background(), "42", ultimate())
	var he *failure.HTTPError
	if !errors.As(err, &he) || he.StatusCode != 429 || he.RetryAfter != time.Second {
		t.Fatalf("err = %v, want a 429 HTTPError with Retry-After 1s", err)
	}
	// The caller's redelivery succeeds once the fault has passed.
	if err := c.Provision(context.Background(), "42", ultimate()); err != nil {
		t.Fatalf("second Provision: %v", err)
	}
}

func TestProvisionNetworkErrorIsTransient(t *testing.T) {
	t.Parallel()
	g := startDouble(t)
	url := g.URL()
	_ = g.Close()

	err := gitlab.NewClient(url, key, nil).Provision(context.Background(), "42", ultimate())
	if err == nil || failure.IsPermanent(err) {
		t.Fatalf("err = %v, want a transient error", err)
	}
}

// Removing the extras sends them as zero, with no storage end date, and the
// namespace then holds none; Current reads them back and Matches compares
// them.
func TestProvisionRemovesExtrasAndCurrentReadsThem(t *testing.T) {
	t.Parallel()
	g := startDouble(t)
	c := gitlab.NewClient(g.URL(), key, nil)
	ctx := context.Background()
	withPacks := ultimate()
	withPacks.Storage = &gitlab.Storage{AdditionalPurchasedStorageSize: 10240, AdditionalPurchasedStorageEndsOn: "2027-01-01"}
	withPacks.ComputeMinutes = &gitlab.ComputeMinutes{ExtraSharedRunnersMinutesLimit: 5000}
	if err := c.Provision(ctx, "42", withPacks); err != nil {
		t.Fatal(err)
	}
	cur, ok, err := c.Current(ctx, "42")
	if err != nil || !ok {
		t.Fatalf("Current = %v, %v", ok, err)
	}
	if cur.AdditionalPurchasedStorageSize != 10240 || cur.AdditionalPurchasedStorageEndsOn != "2027-01-01" ||
		cur.ExtraSharedRunnersMinutesLimit != 5000 || cur.PlanCode != "ultimate" || cur.Seats != 30 {
		t.Fatalf("Current = %+v", cur)
	}
	if !cur.Matches(withPacks) {
		t.Error("Current does not match the request it came from")
	}
	if cur.Matches(ultimate()) != true {
		t.Error("a request leaving the extras unchanged should match")
	}
	removed := ultimate()
	removed.Storage = &gitlab.Storage{}
	removed.ComputeMinutes = &gitlab.ComputeMinutes{}
	if cur.Matches(removed) {
		t.Fatal("Matches ignores the extras to remove")
	}
	if err := c.Provision(ctx, "42", removed); err != nil {
		t.Fatal(err)
	}
	calls := g.Provisions()
	p := calls[len(calls)-1].Body["provision"].(map[string]any)
	st, _ := p["storage"].(map[string]any)
	if v, sent := st["additional_purchased_storage_size"]; !sent || v != 0.0 {
		t.Errorf("storage = %v, want size 0", st)
	}
	if v, sent := st["additional_purchased_storage_ends_on"]; !sent || v != nil {
		t.Errorf("storage = %v, want ends_on null", st)
	}
	if cm, _ := p["compute_minutes"].(map[string]any); cm["extra_shared_runners_minutes_limit"] != 0.0 {
		t.Errorf("compute_minutes = %v, want extra 0", cm)
	}
	if cur, _, _ := c.Current(ctx, "42"); cur.AdditionalPurchasedStorageSize != 0 ||
		cur.AdditionalPurchasedStorageEndsOn != "" || cur.ExtraSharedRunnersMinutesLimit != 0 || !cur.Matches(removed) {
		t.Errorf("after removal Current = %+v", cur)
	}
}

func TestMatchesComparesEverythingTheRequestSets(t *testing.T) {
	t.Parallel()
	req := ultimate()
	req.Storage = &gitlab.Storage{AdditionalPurchasedStorageSize: 1024, AdditionalPurchasedStorageEndsOn: "2027-01-01"}
	req.ComputeMinutes = &gitlab.ComputeMinutes{ExtraSharedRunnersMinutesLimit: 1000}
	req.BaseProduct.MaxSeatsUsed = 30
	held := gitlab.Current{PlanCode: "ultimate", Seats: 30, MaxSeatsUsed: 30, StartDate: "2026-01-01", EndDate: "2027-01-01", AutoRenew: true,
		AdditionalPurchasedStorageSize: 1024, AdditionalPurchasedStorageEndsOn: "2027-01-01", ExtraSharedRunnersMinutesLimit: 1000}
	if !held.Matches(req) {
		t.Fatal("identical state does not match")
	}
	for name, change := range map[string]func(*gitlab.Current){
		"plan":            func(c *gitlab.Current) { c.PlanCode = "premium" },
		"seats":           func(c *gitlab.Current) { c.Seats = 29 },
		"max seats used":  func(c *gitlab.Current) { c.MaxSeatsUsed = 31 },
		"start":           func(c *gitlab.Current) { c.StartDate = "2025-01-01" },
		"end":             func(c *gitlab.Current) { c.EndDate = "2026-12-31" },
		"auto-renew":      func(c *gitlab.Current) { c.AutoRenew = false },
		"trial":           func(c *gitlab.Current) { c.Trial = true },
		"storage size":    func(c *gitlab.Current) { c.AdditionalPurchasedStorageSize = 0 },
		"storage ends on": func(c *gitlab.Current) { c.AdditionalPurchasedStorageEndsOn = "" },
		"extra minutes":   func(c *gitlab.Current) { c.ExtraSharedRunnersMinutesLimit = 0 },
	} {
		c := held
		change(&c)
		if c.Matches(req) {
			t.Errorf("%s differs but Matches is true", name)
		}
	}
}

// GitLab keeps a max_seats_used it is not sent; a request leaves it out
// when 0, so a namespace holding an older value still matches.
func TestMatchesIgnoresAMaxSeatsUsedNotSent(t *testing.T) {
	cur := gitlab.Current{PlanCode: "free", MaxSeatsUsed: 14, StartDate: "2027-01-15", EndDate: "2028-01-15"}
	req := gitlab.ProvisionRequest{BaseProduct: gitlab.BaseProduct{PlanCode: "free", StartDate: "2027-01-15", EndDate: "2028-01-15"}}
	if !cur.Matches(req) {
		t.Fatal("a max_seats_used the request does not send made it differ")
	}
	req.BaseProduct.MaxSeatsUsed = 15
	if cur.Matches(req) {
		t.Fatal("a max_seats_used sent and different was taken as held")
	}
}
