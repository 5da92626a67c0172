// Package idempotency holds every idempotency key this system sends to an
// outside system, one function per format. A key is built only from values
// that a retry sees unchanged (ids, versions, term dates, step numbers),
// never from the clock or a random value: the provider recognises the retry
// by the key and answers it from the first call, so nothing happens twice.
//
// The strings are stored and sent as they are: changing a format would make
// an in-flight retry look like a new call. The table test pins each one.
package idempotency

import (
	"fmt"
	"time"
)

// Renewal is the key of the renewal charge (Stripe) of subscriptionID for the
// term starting at termStart; its steps' keys derive from it (ChargeInvoice,
// ChargeItem, ChargePay) and it is the invoice's "charge" metadata. The
// subscription and the term it pays for fix it, so every retry of the
// renewal step, whenever it runs, sends the same key.
func Renewal(subscriptionID string, termStart time.Time) string {
	return fmt.Sprintf("renewal-%s-%s", subscriptionID, termStart.Format(time.DateOnly))
}

// RenewalRetry is the key of the dunning step's nth pay call (Stripe's pay
// invoice) on the renewal invoice for the term starting at termStart. The
// attempt number comes from the dunning schedule, not from the delivery, so
// a redelivered retry step repeats the same attempt instead of paying again.
func RenewalRetry(subscriptionID string, termStart time.Time, n int) string {
	return fmt.Sprintf("%s-retry-%d", Renewal(subscriptionID, termStart), n)
}

// RenewalSettle is the key of the pay call (Stripe's pay invoice) that settles
// a renewal charge whose first pay call got no answer. It differs from the
// renewal's own pay key (that call did not take) and is fixed by the term,
// so a retried settle step never pays twice.
func RenewalSettle(subscriptionID string, termStart time.Time) string {
	return Renewal(subscriptionID, termStart) + "-pay-settle"
}

// TrueUp is the key of the quarter's true-up charge (Stripe) of
// subscriptionID in the term starting at termStart. Subscription, term and
// quarter name the charge, so a retried true-up step sends the same key.
func TrueUp(subscriptionID string, termStart time.Time, quarter int) string {
	return fmt.Sprintf("trueup-%s-%s-q%d", subscriptionID, termStart.Format(time.DateOnly), quarter)
}

// Change is the key of the prorated charge (Stripe) of an operator's
// subscription change: the command's CloudEvent id, which every redelivery
// of that command carries.
func Change(commandID string) string {
	return "change-" + commandID
}

// ChargeInvoice is the key of the create-invoice call (Stripe) of the charge
// named chargeKey: one key per call of a charge, each fixed by the charge's.
func ChargeInvoice(chargeKey string) string { return chargeStep(chargeKey, "invoice") }

// ChargeItem is the key of the create-invoice-item call (Stripe) of the
// charge named chargeKey, fixed by the charge's key.
func ChargeItem(chargeKey string) string { return chargeStep(chargeKey, "item") }

// ChargePay is the key of the first pay call (Stripe's pay invoice) of the
// charge named chargeKey, fixed by the charge's key.
func ChargePay(chargeKey string) string { return chargeStep(chargeKey, "pay") }

func chargeStep(chargeKey, step string) string { return chargeKey + "-" + step }

// PurchaseXID is GitLab's purchase_xid of the provisioning order for one
// version of a subscription: its purchase id and the version. A redelivered
// event of that version sends the same order; a new version is a new order.
func PurchaseXID(purchaseID string, version int64) string {
	return fmt.Sprintf("%s-v%d", purchaseID, version)
}

// LicenseID is the id of the self-managed license issued for one version of a
// subscription, stored with the license and signed into it. The subscription
// and its version fix it, so a retried delivery stores the same license.
func LicenseID(subscriptionID string, version int64) string {
	return fmt.Sprintf("lic-%s-v%d", subscriptionID, version)
}

// PaymentFailuresAlert is the PagerDuty dedup_key of a payment-failure alert:
// the key of the failure event that crossed the threshold. PagerDuty folds
// every trigger and resolve with that key into one incident, so a retried
// notification does not page twice.
func PaymentFailuresAlert(crossingKey string) string {
	return "payment-failures-" + crossingKey
}

// DisputeAlert is the PagerDuty dedup key (and alert document id) of the
// alert about one disputed charge, from the dispute event's key: a
// redelivery pages once.
func DisputeAlert(eventKey string) string { return "dispute-" + eventKey }
