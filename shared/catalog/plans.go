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

// TermPriceCents is what one term of order costs at list price.
func (p Plan) TermPriceCents(o Order) int64 {
	months := int64(o.TermMonths)
	if months <= 0 {
		months = 12
	}
	yearly := int64(o.Seats)*p.SeatCentsPerYear +
		int64(o.StorageGB+9)/10*p.StorageCentsPer10GB +
		int64(o.ComputeMinutes+999)/1000*p.ComputeCentsPer1000m
	return yearly * months / 12
}
