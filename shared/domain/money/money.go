// Package money formats integer minor units (cents) in a currency for people
// to read: "$1,022.07", "€87.50", "¥1,200", "CHF 12.00". Amounts are never
// floats; zero-decimal currencies (JPY, KRW, ...) have no minor part.
package money

import (
	"strconv"
	"strings"
)

// symbols are the currencies written with a sign before the amount.
var symbols = map[string]string{"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$"}

// zeroDecimal are Stripe's zero-decimal currencies: the amount is in units.
var zeroDecimal = map[string]bool{"bif": true, "clp": true, "djf": true, "gnf": true, "jpy": true, "kmf": true,
	"krw": true, "mga": true, "pyg": true, "rwf": true, "ugx": true, "vnd": true, "vuv": true, "xaf": true, "xof": true, "xpf": true}

// Format writes cents of currency (an ISO 4217 code, any case; empty is
// USD) with thousands separators.
func Format(cents int64, currency string) string {
	cur := strings.ToLower(strings.TrimSpace(currency))
	if cur == "" {
		cur = "usd"
	}
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	var num string
	if zeroDecimal[cur] {
		num = group(cents)
	} else {
		num = group(cents/100) + "." + pad2(cents%100)
	}
	if s, ok := symbols[cur]; ok {
		return sign + s + num
	}
	return sign + strings.ToUpper(cur) + " " + num
}

func pad2(n int64) string {
	if n < 10 {
		return "0" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}

// group writes n with a comma every three digits.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}
