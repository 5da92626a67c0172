package testdouble

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// What GitLab's GitlabSubscriptions::API::Internal::Auth checks in the token.
// They are repeated here, not imported from shared/gitlab, so the double
// checks the client against GitLab's contract rather than against itself.
const (
	gitlabTokenHeader = "X-Customers-Dot-Internal-Token"
	gitlabIssuer      = "https://customers.gitlab.com/"
	gitlabAudience    = "gitlab-subscriptions"
	gitlabSubject     = "customers-dot-internal-api"
)

// GitLab doubles GitLab's internal provisioning API
// (POST /api/v4/internal/gitlab_subscriptions/namespaces/:id/provision).
type GitLab struct {
	*Server
	key []byte

	mu         sync.Mutex
	namespaces map[string]map[string]any // last "provision" hash per namespace
}

// StartGitLab starts a GitLab double that accepts tokens signed with key.
func StartGitLab(addr string, key []byte) (*GitLab, error) {
	g := &GitLab{key: key, namespaces: map[string]map[string]any{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v4/internal/gitlab_subscriptions/namespaces/{id}/provision", g.provision)
	mux.HandleFunc("GET /api/v4/namespaces/{id}/gitlab_subscription", g.subscription)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
	})
	s, err := start(addr, mux, options{
		headers: []string{gitlabTokenHeader, "Content-Type"},
		onReset: g.reset,
	})
	if err != nil {
		return nil, err
	}
	g.Server = s
	return g, nil
}

// Provisioned returns the last provision hash a namespace received.
func (g *GitLab) Provisioned(namespaceID string) (map[string]any, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.namespaces[namespaceID]
	return p, ok
}

// Provisions returns the provisioning calls (POST) received so far.
func (g *GitLab) Provisions() []Call {
	var out []Call
	for _, c := range g.Calls() {
		if c.Method == http.MethodPost {
			out = append(out, c)
		}
	}
	return out
}

// subscription answers GET /namespaces/:id/gitlab_subscription with the
// namespace's current plan, in GitLab's shape (plan, usage, billing).
func (g *GitLab) subscription(w http.ResponseWriter, r *http.Request) {
	if err := g.verify(r.Header.Get(gitlabTokenHeader)); err != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "401 Unauthorized"})
		return
	}
	g.mu.Lock()
	p, ok := g.namespaces[r.PathValue("id")]
	g.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 Namespace Not Found"})
		return
	}
	bp, _ := p["base_product"].(map[string]any)
	writeJSON(w, http.StatusOK, map[string]any{
		"plan":    map[string]any{"code": bp["plan_code"], "trial": bp["trial"], "auto_renew": bp["auto_renew"]},
		"usage":   map[string]any{"seats_in_subscription": bp["seats"], "max_seats_used": bp["max_seats_used"]},
		"billing": map[string]any{"subscription_start_date": bp["start_date"], "subscription_end_date": bp["end_date"]},
	})
}

func (g *GitLab) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.namespaces = map[string]map[string]any{}
}

func (g *GitLab) provision(w http.ResponseWriter, r *http.Request) {
	if err := g.verify(r.Header.Get(gitlabTokenHeader)); err != nil {
		// Grape's unauthorized! answer.
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "401 Unauthorized"})
		return
	}
	body, _ := decodeObject(r) // a malformed body fails validation below
	p, err := validateProvision(body)
	if err != nil {
		// Grape's param-validation answer.
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	g.mu.Lock()
	g.namespaces[r.PathValue("id")] = p
	g.mu.Unlock()
	// GitLab answers `status :ok` with no entity.
	w.WriteHeader(http.StatusOK)
}

// verify checks the token the way GitLab does: signature, iss, sub, aud, exp.
// GitLab verifies RS256 against CustomersDot's JWKS; this double uses the
// shared HS256 key the fulfillment client is configured with.
func (g *GitLab) verify(token string) error {
	if token == "" {
		return fmt.Errorf("missing %s", gitlabTokenHeader)
	}
	_, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return g.key, nil },
		jwt.WithValidMethods([]string{"HS256"}),
		jwt.WithIssuer(gitlabIssuer),
		jwt.WithAudience(gitlabAudience),
		jwt.WithSubject(gitlabSubject),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(5*time.Second),
	)
	return err
}

// validateProvision mirrors the Grape params block: a required "provision"
// hash, dates as YYYY-MM-DD, integers as numbers. base_product is optional
// in GitLab but required here, since fulfillment always sends it.
func validateProvision(body map[string]any) (map[string]any, error) {
	p, ok := body["provision"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("provision is missing")
	}
	bp, ok := p["base_product"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("provision[base_product] is missing")
	}
	checks := []struct {
		hash   string
		fields map[string]string // field -> kind
	}{
		{"base_product", map[string]string{
			"plan_code": "string", "start_date": "date", "end_date": "date",
			"seats": "int", "max_seats_used": "int", "trial": "bool", "auto_renew": "bool",
			"trial_starts_on": "date", "trial_ends_on": "date",
		}},
		{"storage", map[string]string{
			"additional_purchased_storage_size": "int", "additional_purchased_storage_ends_on": "date",
		}},
		{"compute_minutes", map[string]string{
			"shared_runners_minutes_limit": "int", "extra_shared_runners_minutes_limit": "int",
		}},
	}
	hashes := map[string]map[string]any{"base_product": bp}
	for _, name := range []string{"storage", "compute_minutes"} {
		if h, ok := p[name].(map[string]any); ok {
			hashes[name] = h
		}
	}
	for _, c := range checks {
		for field, kind := range c.fields {
			v, present := hashes[c.hash][field]
			if present && v != nil && !validKind(v, kind) {
				return nil, fmt.Errorf("provision[%s][%s] is invalid", c.hash, field)
			}
		}
	}
	return p, nil
}

func validKind(v any, kind string) bool {
	switch kind {
	case "string":
		_, ok := v.(string)
		return ok
	case "bool":
		_, ok := v.(bool)
		return ok
	case "int":
		f, ok := v.(float64)
		return ok && f == float64(int64(f))
	case "date":
		s, ok := v.(string)
		if !ok {
			return false
		}
		_, err := time.Parse(time.DateOnly, s)
		return err == nil
	}
	return false
}
