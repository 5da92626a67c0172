package bench

import (
	"slices"
	"strings"
	"testing"
	"time"

	"fulfillment/infra/localstack"
)

func TestSpreadIsTheMedianAndTheRange(t *testing.T) {
	for _, c := range []struct {
		vs   []float64
		want string
	}{
		{[]float64{344, 315, 325}, "325 µs (315-344)"},
		{[]float64{120, 100, 140, 130}, "120 µs (100-140)"}, // the lower middle
		{[]float64{42}, "42 µs"},
		{nil, ""},
	} {
		if got := spread("%.0f µs", c.vs); got != c.want {
			t.Errorf("spread(%v) = %q, want %q", c.vs, got, c.want)
		}
	}
}

func TestTheThroughputShownIsTheMedianRound(t *testing.T) {
	rounds := []Throughput{{Orders: 1000, Elapsed: 8 * time.Second}, {Orders: 1000, Elapsed: 10 * time.Second}, {Orders: 1000, Elapsed: 7 * time.Second}}
	if got := medianRound(rounds); got.Elapsed != 8*time.Second {
		t.Fatalf("median round = %+v, want the one of 8 s (125 orders/s)", got)
	}
}

// Each concurrency's line shows the median of its rounds, with the range,
// whatever order the rounds ran in.
func TestWebhookLinesAreTheRoundsMedians(t *testing.T) {
	level := func(c int, cpu time.Duration, load float64) WebhookLevel {
		return WebhookLevel{Concurrency: c, Events: 500, Deliveries: 1000, Elapsed: time.Second, P50: time.Millisecond, P99: 2 * time.Millisecond,
			CPU: 1000 * cpu, Handled: 400, Published: 400, PublishedEvents: 400, Load: Load{Avg1: load, Busy: 0.5}}
	}
	r := Report{Webhook: []WebhookLevel{
		level(1, 344*time.Microsecond, 2.8), level(8, 200*time.Microsecond, 3),
		level(1, 315*time.Microsecond, 3.1), level(8, 210*time.Microsecond, 3),
		level(1, 325*time.Microsecond, 4.3), level(8, 190*time.Microsecond, 3),
	}}
	var b strings.Builder
	r.Print(&b)
	out := b.String()
	for _, want := range []string{
		"concurrency 1: deliveries/s; distinct events/s, median of 3 rounds (range)",
		"325 µs (315-344)", "200 µs (190-210)",
		"load 2.8-4.3, cpu 50% (steal 0%)",
		"0.80 (1200 of 1200)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the table has no %q:\n%s", want, out)
		}
	}
}

// The purchase with the floor's push waits is each purchase's own time and
// the waits of the floor sent after the same pause, pair by pair.
func TestThePurchaseWithTheFloorsWaitsTakesItsOwnTimeAndTheirs(t *testing.T) {
	ms := time.Millisecond
	purchases := []localstack.TwoHops{{Total: 120 * ms, EmulatorWait: 114 * ms}, {Total: 80 * ms, EmulatorWait: 73 * ms}, {Total: 9 * ms, EmulatorWait: 1 * ms}}
	floor := []localstack.TwoHops{{Total: 51 * ms, EmulatorWait: 50 * ms}, {Total: 99 * ms, EmulatorWait: 98 * ms}}
	got := OwnWithWaitsOf(purchases, floor)
	if want := []time.Duration{56 * ms, 105 * ms}; !slices.Equal(got, want) {
		t.Fatalf("with the floor's waits: %v, want %v (own 6 and 7 ms, waits 50 and 98; the third purchase has no floor beside it)", got, want)
	}
}
