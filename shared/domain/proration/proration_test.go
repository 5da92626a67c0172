package proration

import (
	"testing"
	"time"
)

func date(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestCents(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name             string
		cents            int64
		start, end, from string
		want             int64
	}{
		{"whole term on the first day", 34800, "2026-01-01", "2027-01-01", "2026-01-01", 34800},
		{"before the term counts all of it", 34800, "2026-01-01", "2027-01-01", "2025-12-15", 34800},
		{"half a common year", 36500, "2026-01-01", "2027-01-01", "2026-07-02", 18300},                    // 183 of 365 days
		{"half a leap year", 36600, "2024-01-01", "2025-01-01", "2024-07-02", 18300},                      // 183 of 366 days
		{"leap day counts in a term over Feb 29", 36600, "2024-02-01", "2025-02-01", "2024-02-29", 33800}, // 338 of 366
		{"term starting on a leap day", 36500, "2024-02-29", "2025-02-28", "2024-08-29", 18300},           // 183 of 365
		{"from a month end", 31000, "2026-01-31", "2026-03-03", "2026-02-28", 3000},                       // 3 of 31 days
		{"last day of the term", 36500, "2026-01-01", "2027-01-01", "2026-12-31", 100},
		{"zero days left on the end day", 36500, "2026-01-01", "2027-01-01", "2027-01-01", 0},
		{"zero days left after the end", 36500, "2026-01-01", "2027-01-01", "2027-03-01", 0},
		{"rounds half up", 1, "2026-01-01", "2026-01-03", "2026-01-02", 1},         // 0.5 cent
		{"rounds down below half", 1, "2026-01-01", "2026-01-04", "2026-01-03", 0}, // 0.33 cent
		{"time of day is ignored", 36500, "2026-01-01", "2027-01-01", "2026-12-31", 100},
		{"empty term costs nothing", 36500, "2026-01-01", "2026-01-01", "2026-01-01", 0},
		{"4 seats of premium for 3 quarters", 4 * 34800, "2026-01-15", "2027-01-15", "2026-04-22", 102207}, // 268 of 365
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			from := date(c.from)
			if c.name == "time of day is ignored" {
				from = from.Add(23 * time.Hour)
			}
			if got := Cents(c.cents, date(c.start), date(c.end), from); got != c.want {
				t.Errorf("Cents(%d, %s..%s from %s) = %d, want %d", c.cents, c.start, c.end, c.from, got, c.want)
			}
		})
	}
}

func TestUpgrade(t *testing.T) {
	t.Parallel()
	start, end := date("2026-01-01"), date("2027-01-01")
	cases := []struct {
		name     string
		old, new int64
		from     string
		want     int64
	}{
		{"premium to ultimate at mid-year", 34800, 118800, "2026-07-02", 0}, // set below: 84000 * 183/365
		{"same price costs nothing", 34800, 34800, "2026-07-02", 0},
		{"downgrade costs nothing now", 118800, 34800, "2026-07-02", 0},
		{"on the end day costs nothing", 34800, 118800, "2027-01-01", 0},
		{"on the first day the full difference", 34800, 118800, "2026-01-01", 84000},
	}
	cases[0].want = Cents(84000, start, end, date("2026-07-02"))
	if cases[0].want != 42115 {
		t.Fatalf("84000 over 183 of 365 days = %d, want 42115", cases[0].want)
	}
	for _, c := range cases {
		if got := Upgrade(c.old, c.new, start, end, date(c.from)); got != c.want {
			t.Errorf("%s: Upgrade = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestAddMonthsClampsToMonthEnds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		from string
		n    int
		want string
	}{
		{"2026-01-31", 1, "2026-02-28"},
		{"2028-01-31", 1, "2028-02-29"},
		{"2026-01-31", 3, "2026-04-30"},
		{"2026-11-30", 3, "2027-02-28"},
		{"2024-02-29", 12, "2025-02-28"},
		{"2026-01-15", 9, "2026-10-15"},
		{"2026-05-31", -3, "2026-02-28"},
	}
	for _, c := range cases {
		if got := AddMonths(date(c.from), c.n).Format(time.DateOnly); got != c.want {
			t.Errorf("AddMonths(%s, %d) = %s, want %s", c.from, c.n, got, c.want)
		}
	}
}

func TestDaysAndRemaining(t *testing.T) {
	t.Parallel()
	if d := Days(date("2024-01-01"), date("2025-01-01")); d != 366 {
		t.Errorf("leap year has %d days", d)
	}
	if d := Days(date("2026-03-01"), date("2026-02-01")); d != -28 {
		t.Errorf("backwards Days = %d", d)
	}
	if left, total := Remaining(date("2026-01-01"), date("2027-01-01"), date("2026-12-01")); left != 31 || total != 365 {
		t.Errorf("Remaining = %d/%d", left, total)
	}
}
