package ledger

import (
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func quoted(t *testing.T) (*Ledger, *Line) {
	t.Helper()
	var l Ledger
	ln, err := l.Quote(Line{Key: "change-1", Kind: Seats, AmountCents: 5000, Currency: "usd", QuotedAt: t0, Buys: Grant{Seats: 5}})
	if err != nil {
		t.Fatal(err)
	}
	return &l, ln
}

func TestQuoteIsStoredOnceAndChargedAsStored(t *testing.T) {
	l, ln := quoted(t)
	if ln.Outcome != Quoted || len(*l) != 1 {
		t.Fatalf("after quote: %+v", *l)
	}
	again, err := l.Quote(Line{Key: "change-1", Kind: Seats, AmountCents: 5000, Currency: "usd", QuotedAt: t0.Add(time.Hour)})
	if err != nil || len(*l) != 1 || !again.QuotedAt.Equal(t0) {
		t.Fatalf("re-quote: %v, %d lines, quoted at %s: want the stored quote", err, len(*l), again.QuotedAt)
	}
	if _, err := l.Quote(Line{Key: "change-1", Kind: Seats, AmountCents: 6000, Currency: "usd"}); !errors.Is(err, ErrQuoteMismatch) {
		t.Fatalf("re-quote at another price: %v, want ErrQuoteMismatch", err)
	}
	if _, err := l.Quote(Line{Key: "x", AmountCents: 1}); err == nil {
		t.Fatal("a quote without currency was accepted")
	}
}

func TestOutcomesNeverGoBack(t *testing.T) {
	for _, tc := range []struct {
		name     string
		steps    []Outcome
		want     Outcome
		wantPaid bool
	}{
		{"paid", []Outcome{Paid}, Paid, true},
		{"failed then paid by a retry", []Outcome{Failed, Paid}, Paid, true},
		{"paid then a late failure", []Outcome{Paid, Failed}, Paid, true},
		{"paid then a late void", []Outcome{Paid, Void}, Paid, true},
		{"failed then void", []Outcome{Failed, Void}, Void, false},
		{"failed then uncollectible", []Outcome{Failed, Uncollectible}, Uncollectible, false},
		{"paid then refunded", []Outcome{Paid, Refunded}, Refunded, false},
		{"paid, disputed, won", []Outcome{Paid, Disputed, DisputeWon}, DisputeWon, true},
		{"paid, disputed, lost", []Outcome{Paid, Disputed, DisputeLost}, DisputeLost, false},
		{"dispute closed before opened arrives", []Outcome{Paid, DisputeLost, Disputed}, DisputeLost, false},
		{"refund repeated", []Outcome{Paid, Refunded, Refunded}, Refunded, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ln := quoted(t)
			ln.Sent("in_1", false, t0)
			for i, o := range tc.steps {
				ln.Record(o, t0.Add(time.Duration(i+1)*time.Hour), 0)
			}
			if ln.Outcome != tc.want || ln.IsPaid() != tc.wantPaid {
				t.Fatalf("outcome %s paid %v, want %s paid %v", ln.Outcome, ln.IsPaid(), tc.want, tc.wantPaid)
			}
		})
	}
}

func TestRefundsInPartThenInWhole(t *testing.T) {
	_, ln := quoted(t)
	ln.Record(Paid, t0, 5000)
	if !ln.Record(PartiallyRefunded, t0.Add(time.Hour), 1000) || ln.Outcome != PartiallyRefunded || !ln.IsPaid() {
		t.Fatalf("after a 1000 refund: %+v", ln)
	}
	if ln.Record(PartiallyRefunded, t0.Add(2*time.Hour), 1000) {
		t.Fatal("the same partial refund applied twice")
	}
	if !ln.Record(PartiallyRefunded, t0.Add(3*time.Hour), 5000) || ln.Outcome != Refunded || ln.RefundedCents != 5000 || !ln.TakesBack() {
		t.Fatalf("refunded up to the amount paid: %+v, want refunded in whole", ln)
	}
}

func TestUncoveredAndTotals(t *testing.T) {
	l, ln := quoted(t)
	ln.Granted = true
	if len(l.Uncovered()) != 1 {
		t.Fatal("a granted, unpaid line is not reported")
	}
	ln.Record(Paid, t0, 5000)
	if len(l.Uncovered()) != 0 {
		t.Fatal("a paid line is reported uncovered")
	}
	ln.Record(Refunded, t0.Add(time.Hour), 5000)
	if len(l.Uncovered()) != 1 {
		t.Fatal("a refunded line still granted is not reported")
	}
	ln.Revoked = true
	if len(l.Uncovered()) != 0 {
		t.Fatal("a revoked line is reported")
	}
	sum := l.Sum()
	if sum.Billed["usd"] != 5000 || sum.Paid["usd"] != 5000 || sum.Refunded["usd"] != 5000 {
		t.Fatalf("totals %+v", sum)
	}
	if ln2 := l.ByInvoice(""); ln2 != nil {
		t.Fatal("found a line for no invoice")
	}
}
