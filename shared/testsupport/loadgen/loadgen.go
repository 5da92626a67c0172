// Package loadgen builds the benchmark's webhook load: signed Stripe events
// of about 5 KiB, shaped like stripe-mock's fixtures, in the mix the
// performance targets are stated for (five types in equal shares), each with
// a unique id and delivered one to three times.
package loadgen

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"fulfillment/shared/adapters/stripe"
)

// Types is the mix, in equal shares.
var Types = []string{
	"checkout.session.completed", "invoice.paid", "invoice.payment_failed",
	"customer.subscription.updated", "customer.subscription.deleted",
}

// TargetBytes is the size every event is padded to, about a real event's.
const TargetBytes = 5 << 10

// Delivery is one POST of an event; repeated deliveries share Event.
type Delivery struct {
	Event     string // Stripe event id
	Type      string
	Payload   []byte
	Signature string
}

// Request is the delivery as Stripe sends it to url.
func (d Delivery) Request(url string) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(d.Payload)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Stripe-Signature", d.Signature)
	return req, nil
}

// Event returns the i-th event of a run: its type is Types[i%5], its id is
// unique to (run, i), and it is signed with secret.
func Event(run string, i int, secret string) Delivery {
	typ := Types[i%len(Types)]
	id := fmt.Sprintf("evt_%s_%07d", run, i)
	sub := fmt.Sprintf("sub-cs_%s_%07d", run, i)
	now := time.Now()
	var obj map[string]any
	switch typ {
	case "checkout.session.completed":
		obj = stripe.CheckoutSession("cs_"+run+fmt.Sprint(i), "cus_"+run+fmt.Sprint(i), "buyer@example.com", "paid", 29000,
			map[string]string{"plan_code": "premium", "seats": "10", "namespace_id": "ns-" + run + fmt.Sprint(i)})
	case "invoice.paid", "invoice.payment_failed":
		obj = stripe.Invoice("in_"+run+fmt.Sprint(i), "cus_"+run+fmt.Sprint(i), sub, now, 29000, typ == "invoice.paid")
	default:
		obj = map[string]any{"id": "sub_" + run + fmt.Sprint(i), "object": "subscription", "customer": "cus_" + run + fmt.Sprint(i),
			"status": "active", "metadata": map[string]string{stripe.MetaSubscriptionID: sub}}
	}
	pad(obj)
	payload := stripe.NewEvent(id, typ, now, obj)
	return Delivery{Event: id, Type: typ, Payload: payload, Signature: stripe.Sign(payload, now, secret)}
}

// pad adds the line items and details a real object carries, up to TargetBytes.
func pad(obj map[string]any) {
	var lines []map[string]any
	for n := 0; n < 9; n++ {
		lines = append(lines, map[string]any{
			"id": fmt.Sprintf("il_1Nq%08dAbCdEfGhIjKlMnOp", n), "object": "line_item", "amount": 2900, "amount_excluding_tax": 2900,
			"currency": "usd", "description": "1 × GitLab Premium (at $29.00 / month)", "discountable": true, "livemode": false,
			"period":   map[string]int64{"end": 1767225600, "start": 1764547200},
			"price":    map[string]any{"id": "price_1NqPremiumSeatMonthly", "object": "price", "active": true, "billing_scheme": "per_unit", "currency": "usd", "product": "prod_PremiumSeat", "type": "recurring", "unit_amount": 2900},
			"quantity": 1, "type": "subscription", "tax_amounts": []any{}, "tax_rates": []any{},
		})
	}
	obj["lines"] = map[string]any{"object": "list", "data": lines, "has_more": false, "total_count": len(lines), "url": "/v1/invoices/lines"}
	obj["customer_address"] = map[string]any{"city": "San Francisco", "country": "US", "line1": "268 Bush Street", "postal_code": "94104", "state": "CA"}
	obj["payment_settings"] = map[string]any{"payment_method_types": []string{"card"}, "default_mandate": nil}
	obj["livemode"] = false
}

// Run returns n events of run with 1 to 3 deliveries each, shuffled so the
// repeats of an event arrive apart and sometimes concurrently, as Stripe's
// retries and its at-least-once sends do. seed fixes the order.
func Run(run string, n int, secret string, seed uint64) []Delivery {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	var out []Delivery
	for i := 0; i < n; i++ {
		d := Event(run, i, secret)
		for k := 1 + r.IntN(3); k > 0; k-- {
			out = append(out, d)
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}
