package catalog

import (
	"math"
	"testing"
)

func TestPricesNeverGoNegative(t *testing.T) {
	premium, _ := LookupPlan("premium")
	ultimate, _ := LookupPlan("ultimate")
	tests := []struct {
		name  string
		plan  Plan
		order Order
		want  int64
	}{
		{"ten premium seats", premium, Order{Seats: 10, TermMonths: 12}, 348000},
		{"max seats premium", premium, Order{Seats: MaxSeats, TermMonths: 12}, MaxSeats * 34800},
		{"max everything ultimate", ultimate, Order{Seats: MaxSeats, StorageGB: MaxPackAmount, ComputeMinutes: MaxPackAmount, TermMonths: MaxTermMonths},
			(MaxSeats*118800 + MaxPackAmount/10*6000 + MaxPackAmount/1000*1000) * MaxTermMonths / 12},
		// Above the limits (refused where orders come in) a quantity counts at its limit: never a wrap.
		{"max int seats", premium, Order{Seats: math.MaxInt64, TermMonths: 12}, MaxSeats * 34800},
		{"max int packs and term", premium, Order{Seats: 1, StorageGB: math.MaxInt64, ComputeMinutes: math.MaxInt64, TermMonths: math.MaxInt64},
			(34800 + MaxPackAmount/10*6000 + MaxPackAmount/1000*1000) * MaxTermMonths / 12},
		{"negative seats", premium, Order{Seats: -10, TermMonths: 12}, 0},
		{"min int seats", premium, Order{Seats: math.MinInt64, StorageGB: math.MinInt64, TermMonths: 12}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.plan.TermPriceCents(tc.order); got != tc.want || got < 0 {
				t.Fatalf("priced %d, want %d", got, tc.want)
			}
		})
	}
}

func TestCheckLimits(t *testing.T) {
	tests := []struct {
		name  string
		order Order
		ok    bool
	}{
		{"at the limits", Order{Seats: MaxSeats, StorageGB: MaxPackAmount, ComputeMinutes: MaxPackAmount, TermMonths: MaxTermMonths}, true},
		{"empty", Order{}, true},
		{"seats over", Order{Seats: MaxSeats + 1}, false},
		{"max int seats", Order{Seats: math.MaxInt64}, false},
		{"negative seats", Order{Seats: -1}, false},
		{"storage over", Order{StorageGB: MaxPackAmount + 1}, false},
		{"negative compute", Order{ComputeMinutes: -1}, false},
		{"compute over", Order{ComputeMinutes: math.MaxInt64}, false},
		{"term over", Order{TermMonths: MaxTermMonths + 1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckLimits(tc.order); (err == nil) != tc.ok {
				t.Fatalf("CheckLimits = %v, want ok %t", err, tc.ok)
			}
		})
	}
}
