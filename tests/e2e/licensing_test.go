package e2e

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fulfillment/functions/licensing"
	"fulfillment/functions/notifications"
	"fulfillment/infra/localstack"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/clock"
	"fulfillment/shared/domain/idempotency"
	"fulfillment/shared/domain/license"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/testsupport/emulator"
	"fulfillment/shared/testsupport/gitlabinstance"
	"fulfillment/shared/testsupport/localproc"
)

func (y *year) licensingPost(path string, body []byte) (int, []byte) {
	y.t.Helper()
	resp, err := http.Post(y.s.URLs["licensing"]+path, "application/json", bytes.NewReader(body))
	if err != nil {
		y.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// activation is what GitLab's `activate` reads of the mutation's answer.
type activation struct {
	key             string
	newSubscription *bool
	errors          []string
}

// activate sends GitLab's current mutation, as an instance whose unique
// id is "uniq-" + instance.
func (y *year) activate(code, instance string) activation {
	y.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": gitlabinstance.ActivateMutation,
		"variables": gitlabinstance.ActivateVariables(code, instance, "uniq-"+instance)})
	status, b := y.licensingPost("/graphql", body)
	var a struct {
		Data struct {
			CloudActivationActivate struct {
				LicenseKey      *string  `json:"licenseKey"`
				NewSubscription *bool    `json:"newSubscription"`
				Errors          []string `json:"errors"`
			} `json:"cloudActivationActivate"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &a); err != nil || status != http.StatusOK {
		y.t.Fatalf("activation answered %d %s", status, b)
	}
	got := a.Data.CloudActivationActivate
	out := activation{newSubscription: got.NewSubscription, errors: got.Errors}
	if got.LicenseKey != nil {
		out.key = *got.LicenseKey
	}
	return out
}

// seatLink posts what GitLab's SyncSeatLinkRequestWorker posts for day: the
// clock moves forward to noon that day, never back, so a late report is
// sent after later days were.
func (y *year) seatLink(key, instance, day string, users int) (int, licensing.SeatLinkAnswer, string) {
	y.t.Helper()
	counted, err := time.Parse(time.RFC3339, day+"T10:00:00Z")
	if err != nil {
		y.t.Fatal(err)
	}
	if noon := counted.Add(2 * time.Hour); noon.After(y.now()) {
		y.setClock(noon.Format(time.RFC3339))
	}
	status, b := y.licensingPost("/api/v1/seat_links", gitlabinstance.SeatLinkBody(key, instance, counted, &users))
	var a licensing.SeatLinkAnswer
	_ = json.Unmarshal(b, &a)
	return status, a, string(b)
}

// codeOf waits for provisioning to issue the subscription's activation code
// and reads it, as fulfillctl show does, from the recorded event.
func (y *year) codeOf(subID string) string {
	y.t.Helper()
	code := ""
	eventually(y.t, 30*time.Second, "activation code of "+subID, func() (bool, string) {
		cl, found, err := y.s.Store.CloudLicense(background, nil, subID)
		if err != nil || !found {
			return false, fmt.Sprint(found, err)
		}
		rec, found, err := y.s.Store.Processed(background, nil, cl.CodeEventKey)
		if err != nil || !found {
			return false, fmt.Sprint("dedupe record ", found, err)
		}
		for _, o := range rec.Outgoing {
			var e struct {
				Type string                       `json:"type"`
				Data catalog.ActivationCodeIssued `json:"data"`
			}
			if json.Unmarshal([]byte(o.Event), &e) == nil && e.Type == catalog.LicenseActivationCodeIssued {
				code = e.Data.ActivationCode
			}
		}
		return code != "", "no code event"
	})
	return code
}

// codeStoredHashed checks that the store holds subID's activation code only
// as its hash: the cloud license and the code's index carry
// HashCode(pepper, code), and no field of either is the plaintext.
func (y *year) codeStoredHashed(subID, code string) {
	y.t.Helper()
	hash := license.HashCode([]byte(localstack.ActivationCodePepper), code)
	cl, _, err := y.s.Store.CloudLicense(background, nil, subID)
	if err != nil || cl.CodeHash != hash {
		y.t.Fatalf("cloud license code_hash %q, want the code's hash %q (%v)", cl.CodeHash, hash, err)
	}
	if idx, found, err := y.s.Store.ActivationCode(background, nil, hash); err != nil || !found || idx.SubscriptionID != subID {
		y.t.Fatalf("activation_codes/<hash>: %+v found %v %v; want it naming %s", idx, found, err, subID)
	}
	for _, doc := range [][2]string{{store.CloudLicenses, subID}, {store.ActivationCodes, hash}} {
		var fields map[string]any
		if err := y.s.Store.DB.Get(background, doc[0], doc[1], &fields); err != nil {
			y.t.Fatal(err)
		}
		for name, v := range fields {
			if strings.Contains(fmt.Sprint(v), code) {
				y.t.Fatalf("%s/%s.%s holds the plaintext code", doc[0], doc[1], name)
			}
		}
	}
}

// overdueNotice waits for the e-mail notifications sends on subID's
// license.sync_overdue event, and returns its subject.
func (y *year) overdueNotice(subID string) string {
	y.t.Helper()
	subject := ""
	eventually(y.t, 60*time.Second, "the sync overdue e-mail of "+subID, func() (bool, string) {
		msgs, err := y.s.Mailpit.Messages(background)
		if err != nil {
			return false, err.Error()
		}
		for _, m := range msgs {
			if !strings.Contains(m.Subject, "has not synced") {
				continue
			}
			h, err := y.s.Mailpit.Headers(background, m.ID)
			if err != nil {
				return false, err.Error()
			}
			if got := h[notifications.HeaderSubscription]; len(got) == 1 && got[0] == subID {
				subject = m.Subject
				return true, ""
			}
		}
		return false, fmt.Sprint(subjects(msgs))
	})
	return subject
}

// daily are the synced instance's seat links, and the days of the
// air-gapped instance's usage file: rising to 14, the peak arriving late
// (for 02-15, after 03-20 was reported) and counting, its repeat not.
var daily = []struct {
	day     string
	users   int
	counted bool
}{{"2026-02-01", 11, true}, {"2026-03-01", 13, true}, {"2026-03-20", 12, false}, {"2026-02-15", 14, true}, {"2026-02-15", 14, false}}

// operatorCLI builds fulfillctl and returns a runner of it against the
// stack, on the stack's clock, that decodes its JSON output into out.
func (y *year) operatorCLI() func(out any, args ...string) {
	y.t.Helper()
	ctx, cancel := ctxTimeout(3 * time.Minute)
	defer cancel()
	bin, err := localproc.Build(ctx, "./infra/cmd/fulfillctl", y.t.TempDir())
	if err != nil {
		y.t.Fatal(err)
	}
	return func(out any, args ...string) {
		y.t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "GOOGLE_CLOUD_PROJECT="+y.s.Project, clock.FileEnv+"="+y.clock,
			"LICENSE_SIGNING_KEY="+localstack.LicenseSeed,
			emulator.FirestoreHostEnv+"="+y.s.Emulators.FirestoreHost, emulator.PubSubHostEnv+"="+y.s.Emulators.PubSubHost)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			y.t.Fatalf("fulfillctl %v: %v\n%s", args, err, stderr.String())
		}
		if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
			y.t.Fatalf("fulfillctl %v printed %s: %v", args, stdout.String(), err)
		}
	}
}

func verifyKey(t *testing.T, key string) license.License {
	t.Helper()
	k, err := license.KeyFromSeed(localstack.LicenseSeed)
	if err != nil {
		t.Fatal(err)
	}
	l, err := license.VerifyKey(key, k.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatalf("license key does not verify: %v", err)
	}
	return l
}

// TestCloudLicensingOfASelfManagedInstance is the journey on the
// emulator stack, speaking to licensing exactly as GitLab's mutation and
// seat link worker do.
func TestCloudLicensingOfASelfManagedInstance(t *testing.T) {
	y := startYear(t)
	y.p = purchase(t)
	y.p.NamespaceID, y.p.InstanceID = "", uniq("instance")
	y.subID = y.p.SubscriptionID()

	// Purchase self-managed with 10 seats: the activation code is issued.
	y.webhook(y.p.CheckoutCompleted(uniq("evt"), y.now()))
	sub := y.until("active", func(s *subscription.Subscription) bool { return s.Status == subscription.Active })
	term1 := sub.TermEnd
	code := y.codeOf(y.subID)
	y.codeStoredHashed(y.subID, code)

	// An air-gapped customer buys the same the same day: the operator issues
	// its offline license file with fulfillctl.
	p2 := purchase(t)
	p2.NamespaceID, p2.InstanceID = "", uniq("airgapped")
	air := &year{t: t, s: y.s, clock: y.clock, p: p2, subID: p2.SubscriptionID()}
	air.webhook(p2.CheckoutCompleted(uniq("evt"), y.now()))
	air.until("active", func(s *subscription.Subscription) bool { return s.Status == subscription.Active })
	air.codeOf(air.subID)
	ctl := y.operatorCLI()
	licenseFile := filepath.Join(t.TempDir(), "air.gitlab-license")
	var off licensing.OfflineLicense
	ctl(&off, "offline-license", "-sub", air.subID, "-instance", "air-gapped-1", "-out", licenseFile)
	offKey, err := os.ReadFile(licenseFile)
	if err != nil {
		t.Fatal(err)
	}
	if l := verifyKey(t, strings.TrimSpace(string(offKey))); !l.Offline || l.Seats != 10 || l.InstanceID != "air-gapped-1" || l.Serial != off.Serial || l.ExpiresOn != "2027-01-15" {
		t.Fatalf("offline license %+v (printed %+v)", l, off)
	}

	// Activate; a second instance with the same code is refused.
	instance := "uuid-" + uniq("gitlab")
	first := y.activate(code, instance)
	if first.key == "" || len(first.errors) != 0 || first.newSubscription == nil || !*first.newSubscription {
		t.Fatalf("activation: %+v; want a key and newSubscription true", first)
	}
	key := first.key
	if l := verifyKey(t, key); l.Seats != 10 || l.InstanceID != instance || l.UniqueInstanceID != "uniq-"+instance || l.SubscriptionID != y.subID || l.Serial != 1 {
		t.Fatalf("activated license %+v", l)
	}
	if again := y.activate(code, instance); again.key != key || again.newSubscription == nil || *again.newSubscription {
		t.Fatalf("repeated activation from the same instance: %+v; want the same key, newSubscription false", again)
	}
	if other := y.activate(code, "uuid-"+uniq("other")); other.key != "" || len(other.errors) != 1 ||
		other.errors[0] != "Activation code has already been used to activate another instance" {
		t.Fatalf("second instance: %+v", other)
	}

	// Daily syncs rising to 14, one late and one repeated (daily).
	for _, r := range daily {
		status, ans, raw := y.seatLink(key, instance, r.day, r.users)
		if status != http.StatusOK || ans.License != "" || ans.NextReconciliationDate != "2026-04-15" || ans.Counted != r.counted {
			t.Fatalf("seat link %s of %d: %d %s; want counted %v", r.day, r.users, status, raw, r.counted)
		}
	}
	y.until("max seats used 14, 4 owed", func(s *subscription.Subscription) bool { return s.MaxSeatsUsed == 14 && s.SeatsOwed == 4 })

	// The air-gapped instance's admin exports its usage (GitLab's CSV, the
	// same days and counts as the synced instance's links) and the operator
	// imports it: the same figures.
	y.setClock("2026-03-25T12:00:00Z")
	var counts []gitlabinstance.UsageCount
	for _, r := range daily {
		at, _ := time.Parse(time.RFC3339, r.day+"T10:00:00Z")
		counts = append(counts, gitlabinstance.UsageCount{RecordedAt: at, Users: r.users})
	}
	usageFile := filepath.Join(t.TempDir(), "usage.csv")
	export := gitlabinstance.UsageExport(gitlabinstance.UsageLicense{Key: strings.TrimSpace(string(offKey)), Email: "admin@example.com",
		StartsAt: term1.AddDate(-1, 0, 0), ExpiresAt: term1}, y.now(), counts...)
	if err := os.WriteFile(usageFile, export, 0o600); err != nil {
		t.Fatal(err)
	}
	var imported licensing.ImportResult
	ctl(&imported, "import-usage", "-sub", air.subID, usageFile)
	if imported.Days != 5 || imported.Counted != 3 || imported.MaxSeatsUsed != 14 || imported.SeatsOwed != 4 {
		t.Fatalf("usage import %+v; want 5 days, 3 counted (as the links were), 14 used, 4 owed", imported)
	}

	// An instance silent past the overdue days (its last link came on
	// 03-20) is announced, and the customer is told; the offline one is not
	// checked.
	y.setClock("2026-03-29T12:00:00Z")
	status, b := y.licensingPost("/tasks/sync-check", nil)
	var check licensing.CheckResult
	if err := json.Unmarshal(b, &check); err != nil || status != http.StatusOK || !slices.Contains(check.Overdue, y.subID) ||
		slices.Contains(check.Overdue, p2.SubscriptionID()) || len(check.Unavailable) != 0 {
		t.Fatalf("sync check: %d %s; want %s overdue", status, b, y.subID)
	}
	if got := y.overdueNotice(y.subID); !strings.Contains(got, "has not synced for 9 days") {
		t.Fatalf("sync overdue e-mail %q, want 9 days", got)
	}

	// The quarterly true-up is billed from the synced figures...
	y.setClock("2026-04-15T10:00:00Z")
	y.tick()
	noticed := func(s *subscription.Subscription) bool {
		return s.Reconciliation.Quarter == 1 && s.Reconciliation.Seats == 4 && !s.Reconciliation.Billed
	}
	y.until("reconciliation notice for 4 seats", noticed)
	air.until("the offline subscription's notice for 4 seats", noticed)
	y.setClock("2026-04-22T10:00:00Z")
	y.tick()
	billed := func(s *subscription.Subscription) bool { return s.Reconciliation.Billed && s.Order.Seats == 14 }
	y.until("true-up billed, 14 seats", billed)
	y.charge(fmt.Sprintf("trueup-%s-2026-01-15-q1", y.subID), 102207) // 4 x $348 x 268/365 days
	// The offline subscription (same term, same figures) is trued up alike.
	air.until("the offline subscription's true-up billed, 14 seats", billed)
	air.charge(fmt.Sprintf("trueup-%s-2026-01-15-q1", air.subID), 102207)
	// ...and the next sync carries the license with 14 seats.
	status, ans, raw := y.seatLink(key, instance, "2026-04-23", 14)
	if status != http.StatusOK || ans.License == "" {
		t.Fatalf("seat link after the true-up: %d %s", status, raw)
	}
	if l := verifyKey(t, ans.License); l.Seats != 14 || l.Serial != 2 {
		t.Fatalf("trued-up license %+v", l)
	}
	key = ans.License

	// Renewal: the next sync returns the new term's license.
	y.setClock("2026-12-31T10:00:00Z")
	y.tick()
	y.until("renewal notice sent", func(s *subscription.Subscription) bool { return s.NoticeSentFor.Equal(term1) })
	y.setClock("2027-01-08T10:00:00Z")
	y.tick()
	raised := y.until("renewal raised", func(s *subscription.Subscription) bool { return s.RenewalPendingFor.Equal(term1) })
	y.charge(idempotency.Renewal(y.subID, term1), 14*34800)
	y.invoiceResult(term1, raised.RenewalInvoiceID, 14*34800, true)
	y.until("renewed", func(s *subscription.Subscription) bool {
		return s.Status == subscription.Active && s.TermStart.Equal(term1)
	})
	status, ans, raw = y.seatLink(key, instance, "2027-01-09", 14)
	if status != http.StatusOK || ans.License == "" {
		t.Fatalf("seat link after the renewal: %d %s", status, raw)
	}
	if l := verifyKey(t, ans.License); l.StartsOn != "2027-01-15" || l.ExpiresOn != "2028-01-15" || l.Seats != 14 || l.Serial != 3 {
		t.Fatalf("renewed license %+v", l)
	}
	key = ans.License

	// Cancellation at the provider: the next sync returns the revoked license,
	// and the revoked key is refused from then on.
	y.webhook(stripe.NewEvent(uniq("evt"), "customer.subscription.deleted", y.now(),
		map[string]any{"id": "sub_stripe_" + y.subID, "object": "subscription", "status": "canceled",
			"metadata": map[string]string{stripe.MetaSubscriptionID: y.subID}}))
	y.until("canceled", func(s *subscription.Subscription) bool { return s.Status == subscription.Canceled })
	status, ans, raw = y.seatLink(key, instance, "2027-01-10", 14)
	if status != http.StatusOK || ans.License == "" {
		t.Fatalf("seat link after the cancellation: %d %s", status, raw)
	}
	if l := verifyKey(t, ans.License); l.Status != license.StatusRevoked || l.Seats != 0 || l.PlanCode != "free" {
		t.Fatalf("revoked license %+v", l)
	}
	if status, _, raw := y.seatLink(ans.License, instance, "2027-01-11", 14); status != http.StatusUnprocessableEntity {
		t.Fatalf("seat link with the revoked key: %d %s", status, raw)
	}
}
