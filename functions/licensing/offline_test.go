package licensing

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"fulfillment/shared/testsupport/gitlabinstance"
)

// TestUsageFileAsGitLabExportsIt imports the file GitLab's admin area
// exports (HistoricalUserData::CsvService): license details first, then
// "Date,Billable User Count" rows dated with UTC timestamps. Each row counts
// for its UTC day, the file's license key must be the subscription's, and
// the import gives the figures the same days would give as seat links.
func TestUsageFileAsGitLabExportsIt(t *testing.T) {
	fx := setup(t, Policy{})
	fx.purchase(t, "sub-export", 10)
	fx.purchase(t, "sub-other", 10)
	off, err := IssueOffline(context.Background(), fx.st, fx.key, "sub-export", "air-gapped-export", fx.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time { ts, _ := time.Parse(time.DateTime, s); return ts }
	file := gitlabinstance.UsageExport(gitlabinstance.UsageLicense{Key: off.LicenseKey, Email: "admin@example.com", Company: "Ada's",
		StartsAt: at("2026-01-15 00:00:00"), ExpiresAt: at("2027-01-15 00:00:00")}, at("2026-01-25 12:00:00"),
		gitlabinstance.UsageCount{RecordedAt: at("2026-01-16 01:00:00"), Users: 11},
		gitlabinstance.UsageCount{RecordedAt: at("2026-01-17 23:59:59"), Users: 12},
		gitlabinstance.UsageCount{RecordedAt: at("2026-01-19 01:00:00"), Users: 14},
		gitlabinstance.UsageCount{RecordedAt: at("2026-01-18 01:00:00"), Users: 13}, // recorded late, listed after a later day
	)
	f, err := ReadUsageFile(bytes.NewReader(file))
	if err != nil {
		t.Fatalf("GitLab's export refused: %v\n%s", err, file)
	}
	var dates []string
	for _, d := range f.Usage {
		dates = append(dates, d.Date)
	}
	if got := strings.Join(dates, " "); got != "2026-01-16 2026-01-17 2026-01-19 2026-01-18" || f.LicenseKey != off.LicenseKey {
		t.Fatalf("read days %s, key %q", got, f.LicenseKey)
	}
	if err := CheckUsageLicense(f, fx.pub(), "sub-other"); err == nil || !strings.Contains(err.Error(), "sub-export") {
		t.Fatalf("a file of sub-export checked for sub-other: %v", err)
	}
	if err := CheckUsageLicense(f, fx.pub(), "sub-export"); err != nil {
		t.Fatal(err)
	}
	fx.clock.set(on(t, "2026-01-25"))
	res, err := ImportUsage(context.Background(), fx.st, "sub-export", f.Usage, fx.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Days != 4 || res.Counted != 3 || res.MaxSeatsUsed != 14 || res.SeatsOwed != 4 {
		t.Fatalf("import %+v; want 4 days, 3 raising the max to 14, 4 owed", res)
	}
}

// TestUsageFileDates: every date form a usage file comes in names the UTC
// day, and older GitLab's "Active User Count" header reads the same way.
func TestUsageFileDates(t *testing.T) {
	for _, c := range []struct{ in, day string }{
		{"2026-03-20", "2026-03-20"},
		{"2026-03-20 23:30:00", "2026-03-20"},
		{"2026-03-20 23:30", "2026-03-20"},
		{"2026-03-20 23:30:00 UTC", "2026-03-20"},
		{"2026-03-20 23:30:00 -0500", "2026-03-21"},
		{"2026-03-20T23:30:00-05:00", "2026-03-21"},
		{"2026-03-21T00:30:00+00:00", "2026-03-21"},
	} {
		days, err := ParseUsageFile(strings.NewReader("Date,Active User Count\n" + c.in + ",7\n"))
		if err != nil || len(days) != 1 || days[0].Date != c.day || days[0].BillableUsersCount != 7 {
			t.Errorf("%q: %+v %v; want %s with 7 users", c.in, days, err, c.day)
		}
	}
	if err := CheckUsageLicense(UsageFile{LicenseKey: "not-ours"}, setup(t, Policy{}).pub(), "sub"); err == nil {
		t.Error("a license key that does not verify was accepted")
	}
}
