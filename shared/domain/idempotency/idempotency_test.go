package idempotency

import (
	"testing"
	"time"
)

// TestFormats pins every key byte for byte: a changed format would make an
// outside system take a retry for a new call.
func TestFormats(t *testing.T) {
	t.Parallel()
	term := time.Date(2027, 3, 10, 15, 4, 5, 0, time.UTC)
	for _, c := range []struct{ name, got, want string }{
		{"Renewal", Renewal("sub-1", term), "renewal-sub-1-2027-03-10"},
		{"RenewalRetry", RenewalRetry("sub-1", term, 2), "renewal-sub-1-2027-03-10-retry-2"},
		{"RenewalSettle", RenewalSettle("sub-1", term), "renewal-sub-1-2027-03-10-pay-settle"},
		{"TrueUp", TrueUp("sub-1", term, 3), "trueup-sub-1-2027-03-10-q3"},
		{"Change", Change("cmd-42"), "change-cmd-42"},
		{"ChargeInvoice", ChargeInvoice("renewal-sub-1-2027-03-10"), "renewal-sub-1-2027-03-10-invoice"},
		{"ChargeItem", ChargeItem("change-cmd-42"), "change-cmd-42-item"},
		{"ChargePay", ChargePay("trueup-sub-1-2027-03-10-q3"), "trueup-sub-1-2027-03-10-q3-pay"},
		{"PurchaseXID", PurchaseXID("pur-9", 4), "pur-9-v4"},
		{"LicenseID", LicenseID("sub-1", 4), "lic-sub-1-v4"},
		{"PaymentFailuresAlert", PaymentFailuresAlert("src_evt-7"), "payment-failures-src_evt-7"},
		{"DisputeAlert", DisputeAlert("src_evt-8"), "dispute-src_evt-8"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}
