package gitlabinstance

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"time"
)

// UsageCount is one row of an instance's historical user data: when the
// count was recorded and the billable users then.
type UsageCount struct {
	RecordedAt time.Time
	Users      int
}

// UsageLicense is the license details an export starts with.
type UsageLicense struct {
	Key, Email, Company string
	StartsAt, ExpiresAt time.Time
}

// Rails' :csv formats in GitLab's config/initializers/date_time_formats.rb.
const (
	csvDate = "2006-01-02"
	csvTime = "2006-01-02 15:04:05"
)

// UsageExport is the usage file GitLab's admin area exports
// (ee/app/services/historical_user_data/csv_service.rb): the license's
// details as two-column rows and a blank row, then "Date,Billable User
// Count" and one row per recorded count, dated recorded_at.utc.
func UsageExport(l UsageLicense, generatedAt time.Time, counts ...UsageCount) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.WriteAll([][]string{
		{"License Key", l.Key},
		{"Email", l.Email},
		{"License Start Date", l.StartsAt.Format(csvDate)},
		{"License End Date", l.ExpiresAt.Format(csvDate)},
		{"Company", l.Company},
		{"Generated At", generatedAt.Format(csvTime)},
		{""},
		{"Date", "Billable User Count"},
	})
	for _, c := range counts {
		_ = w.Write([]string{c.RecordedAt.UTC().Format(csvTime), strconv.Itoa(c.Users)})
	}
	w.Flush()
	return b.Bytes()
}
