package catalog

import "fmt"

// Plan is a sellable plan and its yearly list price per seat.
type Plan struct {
	Code                 string
	SeatCentsPerYear     int64
	StorageCentsPer10GB  int64
	ComputeCentsPer1000m int64
}

// plans is the price list. A plan code not in it is refused: a purchase of an
// unknown plan cannot be provisioned and goes to a person via the dead letters.
var plans = map[string]Plan{
	"premium":  {Code: "premium", SeatCentsPerYear: 29 * 12 * 100, StorageCentsPer10GB: 60 * 100, ComputeCentsPer1000m: 10 * 100},
	"ultimate": {Code: "ultimate", SeatCentsPerYear: 99 * 12 * 100, StorageCentsPer10GB: 60 * 100, ComputeCentsPer1000m: 10 * 100},
}

// LookupPlan returns the plan for code, or an error naming the unknown code.
func LookupPlan(code string) (Plan, error) {
	p, ok := plans[code]
	if !ok {
		return Plan{}, fmt.Errorf("unknown plan %q", code)
	}
	return p, nil
}

// Limits on what one order holds, checked wherever a quantity comes in
// (purchase, seat reports, added seats and packs). They keep every price far
// inside int64: MaxSeats of the dearest plan for MaxTermMonths, prorated by
// day, is below 10^17 cents, so no price can wrap around to a credit.
const (
	MaxSeats      = 1_000_000
	MaxPackAmount = 10_000_000 // storage GB, or compute minutes, in one order
	MaxTermMonths = 120
)

// CheckLimits refuses an order with a negative quantity or one above the limits.
func CheckLimits(o Order) error {
	switch {
	case o.Seats < 0 || o.Seats > MaxSeats:
		return fmt.Errorf("seats %d outside 0..%d", o.Seats, MaxSeats)
	case o.StorageGB < 0 || o.StorageGB > MaxPackAmount:
		return fmt.Errorf("storage %d GB outside 0..%d", o.StorageGB, MaxPackAmount)
	case o.ComputeMinutes < 0 || o.ComputeMinutes > MaxPackAmount:
		return fmt.Errorf("compute minutes %d outside 0..%d", o.ComputeMinutes, MaxPackAmount)
	case o.TermMonths < 0 || o.TermMonths > MaxTermMonths:
		return fmt.Errorf("term of %d months outside 0..%d", o.TermMonths, MaxTermMonths)
	}
	return nil
}

// TermPriceCents is what one term of order costs at list price. Orders are
// checked against the limits where they come in (CheckLimits); a quantity
// outside them (a record older than the limits) is counted at the nearest
// limit, so the price is never negative and never wraps around.
func (p Plan) TermPriceCents(o Order) int64 {
	months := int64(min(o.TermMonths, MaxTermMonths))
	if months <= 0 {
		months = 12
	}
	seats := int64(clamp(o.Seats, MaxSeats))
	storage := int64(clamp(o.StorageGB, MaxPackAmount))
	compute := int64(clamp(o.ComputeMinutes, MaxPackAmount))
	yearly := seats*p.SeatCentsPerYear +
		(storage+9)/10*p.StorageCentsPer10GB +
		(compute+999)/1000*p.ComputeCentsPer1000m
	return yearly * months / 12
}

// clamp bounds n to 0..limit.
func clamp(n, limit int) int { return max(0, min(n, limit)) }
