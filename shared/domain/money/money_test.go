package money

import "testing"

func TestFormat(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cents int64
		cur   string
		want  string
	}{
		{102207, "usd", "$1,022.07"},
		{2257200, "USD", "$22,572.00"},
		{5, "", "$0.05"},
		{8750, "eur", "€87.50"},
		{1200, "jpy", "¥1,200"},
		{1200, "chf", "CHF 12.00"},
		{-150, "gbp", "-£1.50"},
		{123456789012, "usd", "$1,234,567,890.12"},
		{0, "usd", "$0.00"},
	} {
		if got := Format(c.cents, c.cur); got != c.want {
			t.Errorf("Format(%d, %q) = %q, want %q", c.cents, c.cur, got, c.want)
		}
	}
}
