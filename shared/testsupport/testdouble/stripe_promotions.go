package testdouble

import (
	"encoding/json"
	"net/http"
	"strings"
)

// ActivatePromotionCode makes the proxy answer a promotion code lookup
// (GET /v1/promotion_codes?code=C) for code with an active promotion code
// of that id. Any other code finds none: stripe-mock, stateless, answers
// every lookup with the same inactive fixture.
func (p *StripeProxy) ActivatePromotionCode(code, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.promos == nil {
		p.promos = map[string]string{}
	}
	p.promos[strings.ToUpper(code)] = id
}

func (p *StripeProxy) withPromotionCodes(r *http.Request, body []byte) []byte {
	if r.Method != http.MethodGet || r.URL.Path != "/v1/promotion_codes" || !r.URL.Query().Has("code") {
		return body
	}
	code := r.URL.Query().Get("code")
	p.mu.Lock()
	id, ok := p.promos[strings.ToUpper(code)]
	p.mu.Unlock()
	data := []any{}
	if ok {
		data = append(data, map[string]any{"id": id, "object": "promotion_code", "code": code, "active": true})
	}
	out, err := json.Marshal(map[string]any{"object": "list", "url": "/v1/promotion_codes", "has_more": false, "data": data})
	if err != nil {
		return body
	}
	return out
}
