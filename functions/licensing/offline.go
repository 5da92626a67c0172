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

// ParseUsageFile reads a usage file, JSON (UsageFile) or CSV: a header row
// naming at least "date" and "billable_users_count" (also "billable users",
// "billable user count", "active_users"), optionally
// "max_historical_user_count" ("max users"), then one row per day. Lines
// before the header (the export's license details) are skipped.
func ParseUsageFile(r io.Reader) ([]UsageDay, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxUsageFile+1))
	if err != nil {
		return nil, fmt.Errorf("licensing.ParseUsageFile: %w", err)
	}
	if len(b) > maxUsageFile {
		return nil, errors.New("licensing.ParseUsageFile: file larger than 1 MiB")
	}
	var days []UsageDay
	if t := bytes.TrimSpace(b); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		days, err = parseUsageJSON(t)
	} else {
		days, err = parseUsageCSV(b)
	}
	if err != nil {
		return nil, err
	}
	if len(days) == 0 {
		return nil, errors.New("licensing.ParseUsageFile: no usage rows")
	}
	for i, d := range days {
		if _, err := time.Parse(time.DateOnly, d.Date); err != nil {
			return nil, fmt.Errorf("licensing.ParseUsageFile: row %d: date %q is not YYYY-MM-DD", i+1, d.Date)
		}
		if d.BillableUsersCount < 0 || d.BillableUsersCount > catalog.MaxSeats || d.MaxHistoricalUserCount < 0 || d.MaxHistoricalUserCount > catalog.MaxSeats {
			return nil, fmt.Errorf("licensing.ParseUsageFile: row %d: user counts must be within 0..%d", i+1, catalog.MaxSeats)
		}
	}
	return days, nil
}

func parseUsageJSON(b []byte) ([]UsageDay, error) {
	if b[0] == '[' {
		var days []UsageDay
		if err := json.Unmarshal(b, &days); err != nil {
			return nil, fmt.Errorf("licensing.ParseUsageFile: %w", err)
		}
		return days, nil
	}
	var f UsageFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("licensing.ParseUsageFile: %w", err)
	}
	return f.Usage, nil
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
	}
	return ""
}

func parseUsageCSV(b []byte) ([]UsageDay, error) {
	rd := csv.NewReader(bufio.NewReader(bytes.NewReader(b)))
	rd.FieldsPerRecord = -1
	rd.TrimLeadingSpace = true
	var days []UsageDay
	idx := map[string]int{}
	for line := 1; ; line++ {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("licensing.ParseUsageFile: %w", err)
		}
		if len(idx) == 0 { // still looking for the header
			cols := map[string]int{}
			for i, c := range rec {
				if k := column(c); k != "" {
					cols[k] = i
				}
			}
			if _, ok := cols["date"]; ok {
				if _, ok := cols["billable"]; ok {
					idx = cols
				}
			}
			continue
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		get := func(k string) string {
			i, ok := idx[k]
			if !ok || i >= len(rec) {
				return ""
			}
			return strings.TrimSpace(rec[i])
		}
		d := UsageDay{Date: get("date")}
		if d.BillableUsersCount, err = strconv.Atoi(get("billable")); err != nil {
			return nil, fmt.Errorf("licensing.ParseUsageFile: line %d: billable users %q is not a number", line, get("billable"))
		}
		if m := get("max"); m != "" {
			if d.MaxHistoricalUserCount, err = strconv.Atoi(m); err != nil {
				return nil, fmt.Errorf("licensing.ParseUsageFile: line %d: max users %q is not a number", line, m)
			}
		}
		days = append(days, d)
	}
	if len(idx) == 0 {
		return nil, errors.New("licensing.ParseUsageFile: no header row with date and billable_users_count")
	}
	return days, nil
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
