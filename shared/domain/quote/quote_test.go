package quote

import (
	"testing"
	"time"

	"fulfillment/shared/domain/catalog"
)

func order() catalog.Order {
	return catalog.Order{PlanCode: "premium", Seats: 10, Deployment: catalog.DeploymentSaaS, NamespaceID: "42", StorageGB: 25, ComputeMinutes: 1500, TermMonths: 24, AutoRenew: true}
}

func TestPriceLinesAddUpToTermPrice(t *testing.T) {
	o := order()
	lines, total, err := Price(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 3 {
		t.Fatalf("lines = %+v, want seats, storage and compute", lines)
	}
	// 10 seats * $348 * 2 years + 3 packs * $60 * 2 + 2 packs * $10 * 2.
	if want := int64(10*34800*2 + 3*6000*2 + 2*1000*2); total != want {
		t.Fatalf("total = %d, want %d", total, want)
	}
	if lines[0].UnitCents != 69600 || lines[0].Quantity != 10 || lines[1].Quantity != 3 || lines[2].Quantity != 2 {
		t.Fatalf("lines = %+v", lines)
	}
}

func TestPriceRefusesBadOrders(t *testing.T) {
	for name, mut := range map[string]func(*catalog.Order){
		"unknown plan":    func(o *catalog.Order) { o.PlanCode = "gold" },
		"zero seats":      func(o *catalog.Order) { o.Seats = 0 },
		"too many seats":  func(o *catalog.Order) { o.Seats = catalog.MaxSeats + 1 },
		"odd term":        func(o *catalog.Order) { o.TermMonths = 7 },
		"no namespace":    func(o *catalog.Order) { o.NamespaceID = "" },
		"bad deployment":  func(o *catalog.Order) { o.Deployment = "cloud" },
		"negative packs":  func(o *catalog.Order) { o.StorageGB = -1 },
		"both targets":    func(o *catalog.Order) { o.InstanceID = "i-1" },
		"self-managed ns": func(o *catalog.Order) { o.Deployment = catalog.DeploymentSelfManaged },
	} {
		o := order()
		mut(&o)
		if _, _, err := Price(o); !IsInvalid(err) {
			t.Errorf("%s: err = %v, want an InvalidError", name, err)
		}
	}
}

func TestCheck(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	q := Quoted{SessionID: "cs_1", TotalCents: 10000, Currency: "usd", ExpiresAt: now.Add(time.Hour), Discounts: true}
	noPromo := q
	noPromo.Discounts = false
	ok := Paid{SessionID: "cs_1", AmountCents: 10000, Currency: "usd", At: now}
	cases := []struct {
		name string
		q    Quoted
		p    func(Paid) Paid
		want string
	}{
		{"exact", q, func(p Paid) Paid { return p }, ""},
		{"discounted", q, func(p Paid) Paid { p.AmountCents, p.DiscountCents = 8000, 2000; return p }, ""},
		{"below", q, func(p Paid) Paid { p.AmountCents = 9999; return p }, ReasonAmountMismatch},
		{"above", q, func(p Paid) Paid { p.AmountCents = 10001; return p }, ReasonAmountMismatch},
		{"discount on a quote that allowed none", noPromo, func(p Paid) Paid { p.AmountCents, p.DiscountCents = 8000, 2000; return p }, ReasonUnquotedDiscount},
		{"exact on a quote that allowed no discount", noPromo, func(p Paid) Paid { return p }, ""},
		{"discount over total", q, func(p Paid) Paid { p.AmountCents, p.DiscountCents = -1, 10001; return p }, ReasonAmountMismatch},
		{"currency", q, func(p Paid) Paid { p.Currency = "eur"; return p }, ReasonCurrencyMismatch},
		{"expired", q, func(p Paid) Paid { p.At = now.Add(2 * time.Hour); return p }, ReasonExpired},
		{"other session", q, func(p Paid) Paid { p.SessionID = "cs_2"; return p }, ReasonForeignSession},
		{"tax without tax", q, func(p Paid) Paid { p.AmountCents, p.TaxCents = 10800, 800; return p }, ReasonAmountMismatch},
		{"tax with tax", Quoted{SessionID: "cs_1", TotalCents: 10000, Currency: "usd", Tax: true}, func(p Paid) Paid { p.AmountCents, p.TaxCents = 10800, 800; return p }, ""},
	}
	for _, c := range cases {
		if got, _ := Check(c.q, c.p(ok)); got != c.want {
			t.Errorf("%s: reason = %q, want %q", c.name, got, c.want)
		}
	}
}
