package testdouble

import (
	"encoding/json"
	"net/http"
	"strings"
)

// SavePaymentMethod makes the proxy answer lookups of a payment or setup
// intent (GET /v1/payment_intents/ID, /v1/setup_intents/ID) with
// payment_method set to methodID, as Stripe does once a checkout saved a
// card: stripe-mock, stateless, answers null.
func (p *StripeProxy) SavePaymentMethod(intentID, methodID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.methods == nil {
		p.methods = map[string]string{}
	}
	p.methods[intentID] = methodID
}

func (p *StripeProxy) withPaymentMethod(r *http.Request, body []byte) []byte {
	if r.Method != http.MethodGet {
		return body
	}
	var id string
	for _, prefix := range []string{"/v1/payment_intents/", "/v1/setup_intents/"} {
		if rest, ok := strings.CutPrefix(r.URL.Path, prefix); ok && !strings.Contains(rest, "/") {
			id = rest
		}
	}
	p.mu.Lock()
	method, ok := p.methods[id]
	p.mu.Unlock()
	if id == "" || !ok {
		return body
	}
	var obj map[string]any
	if json.Unmarshal(body, &obj) != nil {
		return body
	}
	obj["id"], obj["payment_method"] = id, method
	out, err := json.Marshal(obj)
	if err != nil {
		return body
	}
	return out
}
