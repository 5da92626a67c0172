package bench

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Rounds: the machine drifts within minutes by as much as a change moves a
// figure (docs/testing.md, Bench), so make bench runs the webhook's levels
// and the pipeline's throughput more than once, one round after the other,
// and prints each figure as the median of the rounds with their range.

// spread is the median of vs in format, and their range when there are
// several: "325 µs (315-344)".
func spread(format string, vs []float64) string {
	if len(vs) == 0 {
		return ""
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	med := fmt.Sprintf(format, s[(len(s)-1)/2])
	if len(s) == 1 {
		return med
	}
	number := func(v float64) string { return strings.Fields(fmt.Sprintf(format, v))[0] }
	return fmt.Sprintf("%s (%s-%s)", med, number(s[0]), number(s[len(s)-1]))
}

// each is f of every level.
func each(ls []WebhookLevel, f func(WebhookLevel) float64) []float64 {
	vs := make([]float64, len(ls))
	for i, l := range ls {
		vs[i] = f(l)
	}
	return vs
}

// byConcurrency groups every round's levels by concurrency, in the order
// the concurrencies were first run.
func byConcurrency(ls []WebhookLevel) (order []int, at map[int][]WebhookLevel) {
	at = map[int][]WebhookLevel{}
	for _, l := range ls {
		if _, ok := at[l.Concurrency]; !ok {
			order = append(order, l.Concurrency)
		}
		at[l.Concurrency] = append(at[l.Concurrency], l)
	}
	return order, at
}

// medianRound is the round of median orders per second (the lower middle
// of an even number).
func medianRound(ts []Throughput) Throughput {
	if len(ts) == 0 {
		return Throughput{}
	}
	s := slices.Clone(ts)
	slices.SortFunc(s, func(a, b Throughput) int { return cmp.Compare(a.OrdersPerSecond(), b.OrdersPerSecond()) })
	return s[(len(s)-1)/2]
}

// loadSpan is the machine's load over several rounds: each part's range.
func loadSpan(ls []Load) string {
	if len(ls) == 1 {
		return ls[0].String()
	}
	var avg, busy, steal []float64
	for _, l := range ls {
		avg, busy, steal = append(avg, l.Avg1), append(busy, 100*l.Busy), append(steal, 100*l.Steal)
	}
	span := func(format string, vs []float64) string {
		lo, hi := fmt.Sprintf(format, slices.Min(vs)), fmt.Sprintf(format, slices.Max(vs))
		if lo == hi {
			return lo
		}
		return lo + "-" + hi
	}
	return fmt.Sprintf("load %s, cpu %s%% (steal %s%%)", span("%.1f", avg), span("%.0f", busy), span("%.0f", steal))
}
