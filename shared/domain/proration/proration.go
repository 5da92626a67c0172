// Package proration prices part of a term: day-based, in integer cents,
// rounded half up, with no I/O. A term runs from its start day (included)
// to its end day (excluded); a change on day d pays for [d, end).
package proration

import "time"

// Days counts whole days from a to b (negative when b is before a). Both
// are taken as calendar days in UTC.
func Days(a, b time.Time) int64 {
	return int64(day(b).Sub(day(a)) / (24 * time.Hour))
}

func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Remaining is the share of the term [start, end) left from day from on, as
// days left and days in the term. from before start counts the whole term,
// from at or after end counts nothing.
func Remaining(start, end, from time.Time) (left, total int64) {
	total = Days(start, end)
	switch {
	case total <= 0:
		return 0, 0
	case !day(from).After(day(start)):
		return total, total
	case !day(from).Before(day(end)):
		return 0, total
	}
	return Days(from, end), total
}

// Cents is termCents prorated over what is left of the term from day from.
func Cents(termCents int64, start, end, from time.Time) int64 {
	left, total := Remaining(start, end, from)
	if total == 0 {
		return 0
	}
	return (2*termCents*left + total) / (2 * total)
}

// Upgrade is what moving from a plan costing oldCents a term to one costing
// newCents costs on day from: the new plan for the rest of the term less the
// unused part of the old one. A move to a cheaper plan costs nothing now
// (downgrades take effect at term end).
func Upgrade(oldCents, newCents int64, start, end, from time.Time) int64 {
	if newCents <= oldCents {
		return 0
	}
	return Cents(newCents-oldCents, start, end, from)
}

// AddMonths adds n months to t, clamping to the last day of a shorter
// month: Jan 31 + 1 month is Feb 28 (29 in a leap year), not Mar 3 as
// time.AddDate gives.
func AddMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	last := first.AddDate(0, 1, -1).Day()
	if d > last {
		d = last
	}
	return first.AddDate(0, 0, d-1)
}
