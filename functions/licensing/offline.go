package licensing

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/license"
	"fulfillment/shared/domain/subscription"
)

// Offline cloud licenses, for air-gapped instances: an operator issues a
// license file valid for the term with no sync (fulfillctl offline-license),
// and imports the usage file the customer exports from the instance
// (fulfillctl import-usage), which feeds reconciliation exactly as seat
// links do. docs/licensing.md describes both files.

// OfflineLicense is an offline license as issued.
type OfflineLicense struct {
	SubscriptionID string `json:"subscription_id"`
	InstanceID     string `json:"instance_id"`
	Serial         int64  `json:"serial"`
	// LicenseKey is the file's content: what the admin pastes or uploads.
	LicenseKey string `json:"license_key"`
}

// IssueOffline turns a self-managed subscription's license offline (no sync
// expected, the strict-sync check skips it) and returns the license key for
// the term, bound to instanceID when given (else to the instance already
// activated, or a placeholder naming the subscription).
func IssueOffline(ctx context.Context, st *store.Store, key ed25519.PrivateKey, subscriptionID, instanceID string, now time.Time) (OfflineLicense, error) {
	cl, err := st.UpdateCloudLicense(ctx, subscriptionID, true, func(sub *subscription.Subscription, c *store.CloudLicense) (bool, error) {
		switch {
		case sub.Order.Deployment != catalog.DeploymentSelfManaged:
			return false, fmt.Errorf("licensing.IssueOffline: %s is not a self-managed subscription", sub.ID)
		case !running(sub.Status):
			return false, fmt.Errorf("licensing.IssueOffline: %s is %s", sub.ID, sub.Status)
		case instanceID != "" && c.Activated() && c.InstanceID != instanceID && !c.Offline:
			return false, fmt.Errorf("licensing.IssueOffline: %s is activated by instance %s", sub.ID, c.InstanceID)
		}
		if instanceID == "" && !c.Activated() {
			instanceID = "offline-" + sub.ID
		}
		if instanceID != "" {
			c.InstanceID = instanceID
		}
		if c.ActivatedAt.IsZero() {
			c.ActivatedAt = now
		}
		c.Offline = true
		_, err := Refresh(sub, c, key, now)
		return true, err
	})
	if err != nil {
		return OfflineLicense{}, err
	}
	return OfflineLicense{SubscriptionID: cl.SubscriptionID, InstanceID: cl.InstanceID, Serial: cl.Serial, LicenseKey: cl.Key}, nil
}

// UsageDay is one line of a usage file: a day's billable users and the
// instance's maximum so far.
type UsageDay struct {
	Date                   string `json:"date"`
	BillableUsersCount     int    `json:"billable_users_count"`
	MaxHistoricalUserCount int    `json:"max_historical_user_count"`
}

// UsageFile is the JSON form of a usage file.
type UsageFile struct {
	LicenseKey string     `json:"license_key,omitempty"`
	Usage      []UsageDay `json:"usage"`
}

// maxUsageFile caps a usage file: a year of days is a few KiB.
const maxUsageFile = 1 << 20

// ParseUsageFile reads a usage file's days (ReadUsageFile).
func ParseUsageFile(r io.Reader) ([]UsageDay, error) {
	f, err := ReadUsageFile(r)
	return f.Usage, err
}

// ReadUsageFile reads a usage file, JSON (UsageFile) or CSV. The CSV is what
// GitLab's admin area exports (HistoricalUserData::CsvService): two-column
// rows of license details ("License Key", "Email", ..., a blank row), then a
// header "Date,Billable User Count" ("Active User Count" before 16.x) and one
// row per recorded count, dated with a UTC timestamp. Our own form (a header
// naming "date" and "billable_users_count", optionally
// "max_historical_user_count", then YYYY-MM-DD rows) reads the same way. The
// license key, from the "License Key" row or the JSON's license_key, is kept
// so that CheckUsageLicense can tell whose file it is.
func ReadUsageFile(r io.Reader) (UsageFile, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxUsageFile+1))
	if err != nil {
		return UsageFile{}, fmt.Errorf("licensing.ReadUsageFile: %w", err)
	}
	if len(b) > maxUsageFile {
		return UsageFile{}, errors.New("licensing.ReadUsageFile: file larger than 1 MiB")
	}
	var f UsageFile
	if t := bytes.TrimSpace(b); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		f, err = parseUsageJSON(t)
	} else {
		f, err = parseUsageCSV(b)
	}
	if err != nil {
		return UsageFile{}, err
	}
	if len(f.Usage) == 0 {
		return UsageFile{}, errors.New("licensing.ReadUsageFile: no usage rows")
	}
	for i, d := range f.Usage {
		day, ok := usageDate(d.Date)
		if !ok {
			return UsageFile{}, fmt.Errorf("licensing.ReadUsageFile: row %d: date %q is neither YYYY-MM-DD nor a timestamp", i+1, d.Date)
		}
		f.Usage[i].Date = day
		if d.BillableUsersCount < 0 || d.BillableUsersCount > catalog.MaxSeats || d.MaxHistoricalUserCount < 0 || d.MaxHistoricalUserCount > catalog.MaxSeats {
			return UsageFile{}, fmt.Errorf("licensing.ReadUsageFile: row %d: user counts must be within 0..%d", i+1, catalog.MaxSeats)
		}
	}
	return f, nil
}

// usageDateLayouts are the forms a usage file's date comes in: our
// YYYY-MM-DD; GitLab's export, recorded_at in UTC with Rails' :csv format
// (config/initializers/date_time_formats.rb: "%Y-%m-%d %H:%M:%S"); Ruby's
// default Time#to_s; and RFC 3339 from a script.
var usageDateLayouts = []string{time.DateOnly, time.DateTime, "2006-01-02 15:04", "2006-01-02 15:04:05 -0700", "2006-01-02 15:04:05 MST", time.RFC3339}

// usageDate is the UTC day of a usage file's date: GitLab records its counts
// at a UTC time, and the day a count is for is that time's UTC day.
func usageDate(s string) (string, bool) {
	for _, layout := range usageDateLayouts {
		if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
			return t.UTC().Format(time.DateOnly), true
		}
	}
	return "", false
}

// CheckUsageLicense refuses a usage file whose license key is not ours or
// names another subscription, so that one customer's file cannot be imported
// into another's subscription by a typo in -sub. A file without a key (our
// JSON or CSV without the details rows) is the operator's word.
func CheckUsageLicense(f UsageFile, pub ed25519.PublicKey, subscriptionID string) error {
	if f.LicenseKey == "" {
		return nil
	}
	l, err := license.VerifyKey(f.LicenseKey, pub)
	if err != nil {
		return fmt.Errorf("licensing.CheckUsageLicense: the file's license key is not one of ours: %w", err)
	}
	if l.SubscriptionID != subscriptionID {
		return fmt.Errorf("licensing.CheckUsageLicense: the file is of subscription %s, not %s", l.SubscriptionID, subscriptionID)
	}
	return nil
}

func parseUsageJSON(b []byte) (UsageFile, error) {
	var f UsageFile
	dst := any(&f)
	if b[0] == '[' {
		dst = &f.Usage
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return UsageFile{}, fmt.Errorf("licensing.ReadUsageFile: %w", err)
	}
	return f, nil
}

func column(name string) string {
	n := strings.NewReplacer(" ", "_", "-", "_").Replace(strings.ToLower(strings.TrimSpace(name)))
	switch n {
	case "date":
		return "date"
	case "billable_users_count", "billable_users", "billable_user_count", "active_users", "active_user_count":
		return "billable"
	case "max_historical_user_count", "max_users", "max_historical_users", "historical_max":
		return "max"
	case "license_key":
		return "license_key"
	}
	return ""
}

// usageHeader maps a CSV header row's columns, or says it is not the header
// (it names no date or no billable users).
func usageHeader(rec []string) (map[string]int, bool) {
	cols := map[string]int{}
	for i, c := range rec {
		if k := column(c); k != "" {
			cols[k] = i
		}
	}
	_, date := cols["date"]
	_, billable := cols["billable"]
	return cols, date && billable
}

func parseUsageCSV(b []byte) (UsageFile, error) {
	rd := csv.NewReader(bufio.NewReader(bytes.NewReader(b)))
	rd.FieldsPerRecord = -1
	rd.TrimLeadingSpace = true
	var f UsageFile
	var idx map[string]int
	for line := 1; ; line++ {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return UsageFile{}, fmt.Errorf("licensing.ReadUsageFile: %w", err)
		}
		if idx == nil { // the license details, until the header
			if cols, ok := usageHeader(rec); ok {
				idx = cols
			} else if len(rec) >= 2 && column(rec[0]) == "license_key" {
				f.LicenseKey = strings.TrimSpace(rec[1])
			}
			continue
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		d, err := usageRow(rec, idx)
		if err != nil {
			return UsageFile{}, fmt.Errorf("licensing.ReadUsageFile: line %d: %w", line, err)
		}
		f.Usage = append(f.Usage, d)
	}
	if idx == nil {
		return UsageFile{}, errors.New("licensing.ReadUsageFile: no header row with date and billable_users_count")
	}
	return f, nil
}

// usageRow reads one CSV row under the header idx.
func usageRow(rec []string, idx map[string]int) (UsageDay, error) {
	get := func(k string) string {
		i, ok := idx[k]
		if !ok || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	d := UsageDay{Date: get("date")}
	var err error
	if d.BillableUsersCount, err = strconv.Atoi(get("billable")); err != nil {
		return UsageDay{}, fmt.Errorf("billable users %q is not a number", get("billable"))
	}
	if m := get("max"); m != "" {
		if d.MaxHistoricalUserCount, err = strconv.Atoi(m); err != nil {
			return UsageDay{}, fmt.Errorf("max users %q is not a number", m)
		}
	}
	return d, nil
}

// ImportResult is what an imported usage file did to the subscription.
type ImportResult struct {
	SubscriptionID string `json:"subscription_id"`
	Days           int    `json:"days"`
	Counted        int    `json:"counted"` // days that raised the term's maximum
	MaxSeatsUsed   int    `json:"max_seats_used"`
	SeatsOwed      int    `json:"seats_owed"`
}

// ImportUsage feeds a usage file's days to the subscription through the
// seat link path (store.RecordSeatReport): importing it twice, or a file
// overlapping synced days, gives the same result. The import counts as a
// sync.
func ImportUsage(ctx context.Context, st *store.Store, subscriptionID string, days []UsageDay, now time.Time) (ImportResult, error) {
	cl, found, err := st.CloudLicense(ctx, nil, subscriptionID)
	switch {
	case err != nil:
		return ImportResult{}, err
	case !found || !cl.Activated():
		return ImportResult{}, fmt.Errorf("licensing.ImportUsage: %s has no activated or offline license", subscriptionID)
	}
	res := ImportResult{SubscriptionID: subscriptionID}
	for _, d := range days {
		date, _ := time.Parse(time.DateOnly, d.Date)
		sub, c, err := record(ctx, st, cl, usage{date: date, billable: d.BillableUsersCount, maxUsers: d.MaxHistoricalUserCount}, now)
		if err != nil {
			return res, err
		}
		res.Days++
		if !c.NoOp {
			res.Counted++
		}
		res.MaxSeatsUsed, res.SeatsOwed = sub.MaxSeatsUsed, sub.SeatsOwed
	}
	_, err = st.UpdateCloudLicense(ctx, subscriptionID, false, func(_ *subscription.Subscription, c *store.CloudLicense) (bool, error) {
		if !now.After(c.LastSyncAt) {
			return false, nil
		}
		c.LastSyncAt = now
		return true, nil
	})
	return res, err
}
