package testdouble

import (
	"fmt"
	"maps"
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
// (POST /api/v4/internal/gitlab_subscriptions/namespaces/:id/provision) and
// the internal reads of a namespace's subscription and limits.
type GitLab struct {
	*Server
	key []byte

	mu         sync.Mutex
	namespaces map[string]map[string]any // last "provision" hash per namespace
	state      map[string]*Namespace     // what each namespace holds
	// upcoming reconciliations per namespace (gitlab_reconciliations.go)
	reconciliations map[int64]UpcomingReconciliation
}

// Namespace is what a namespace holds after the provisions it received, kept
// the way GitLab keeps it: SyncNamespaceService
// (ee/app/services/gitlab_subscriptions/provision/sync_namespace_service.rb)
// skips a hash that is absent or empty and otherwise updates the namespace
// with the keys it holds, so a key not sent keeps its value and a key sent
// as 0 or null is set to that.
type Namespace struct {
	// Subscription is the gitlab_subscription's attributes (base_product's
	// declared keys: purchase_xid is dropped, as GitLab does).
	Subscription map[string]any
	// Limits are the namespace's storage and compute-minute columns.
	Limits map[string]any
}

// Namespace returns what a namespace holds now.
func (g *GitLab) Namespace(namespaceID string) (Namespace, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, ok := g.state[namespaceID]
	if !ok {
		return Namespace{}, false
	}
	return Namespace{Subscription: maps.Clone(n.Subscription), Limits: maps.Clone(n.Limits)}, true
}

// StartGitLab starts a GitLab double that accepts tokens signed with key.
func StartGitLab(addr string, key []byte) (*GitLab, error) {
	g := &GitLab{key: key}
	g.reset()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v4/internal/gitlab_subscriptions/namespaces/{id}/provision", g.provision)
	mux.HandleFunc("GET /api/v4/internal/gitlab_subscriptions/namespaces/{id}/gitlab_subscription", g.subscription)
	mux.HandleFunc("GET /api/v4/internal/gitlab_subscriptions/namespaces/{id}", g.namespace)
	mux.HandleFunc("PUT /api/v4/internal/upcoming_reconciliations", g.upcomingReconciliations)
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

// subscription answers
// GET /internal/gitlab_subscriptions/namespaces/:id/gitlab_subscription
// (ee/lib/gitlab_subscriptions/api/internal/subscriptions.rb) with the
// namespace's subscription in the GitlabSubscription entity's shape (plan,
// usage, billing).
func (g *GitLab) subscription(w http.ResponseWriter, r *http.Request) {
	n, ok := g.lookup(w, r)
	if !ok {
		return
	}
	bp := n.Subscription
	writeJSON(w, http.StatusOK, map[string]any{
		"plan":    map[string]any{"code": bp["plan_code"], "trial": bp["trial"], "auto_renew": bp["auto_renew"]},
		"usage":   map[string]any{"seats_in_subscription": bp["seats"], "max_seats_used": bp["max_seats_used"]},
		"billing": map[string]any{"subscription_start_date": bp["start_date"], "subscription_end_date": bp["end_date"]},
	})
}

// namespace answers GET /internal/gitlab_subscriptions/namespaces/:id
// (ee/lib/gitlab_subscriptions/api/internal/namespaces.rb) with the limits
// Entities::Internal::Namespace exposes
// (ee/lib/gitlab_subscriptions/api/entities/internal/namespace.rb); a limit
// never set is null.
func (g *GitLab) namespace(w http.ResponseWriter, r *http.Request) {
	n, ok := g.lookup(w, r)
	if !ok {
		return
	}
	out := map[string]any{"id": r.PathValue("id"), "plan": n.Subscription["plan_code"]}
	for _, k := range []string{"shared_runners_minutes_limit", "extra_shared_runners_minutes_limit",
		"additional_purchased_storage_size", "additional_purchased_storage_ends_on"} {
		out[k] = n.Limits[k]
	}
	// GitLab's column defaults: additional_purchased_storage_size is 0, not null.
	if out["additional_purchased_storage_size"] == nil {
		out["additional_purchased_storage_size"] = 0
	}
	writeJSON(w, http.StatusOK, out)
}

// lookup authenticates a read and finds its namespace, answering 401 or 404
// itself.
func (g *GitLab) lookup(w http.ResponseWriter, r *http.Request) (Namespace, bool) {
	if err := g.verify(r.Header.Get(gitlabTokenHeader)); err != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "401 Unauthorized"})
		return Namespace{}, false
	}
	n, ok := g.Namespace(r.PathValue("id"))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 Namespace Not Found"})
		return Namespace{}, false
	}
	return n, true
}

func (g *GitLab) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.namespaces = map[string]map[string]any{}
	g.state = map[string]*Namespace{}
	g.reconciliations = map[int64]UpcomingReconciliation{}
}

// declared are the keys GitLab's params blocks declare per hash
// (ee/lib/gitlab_subscriptions/api/internal/namespaces/provision.rb), with
// their kinds; declared_params drops the rest.
var declared = map[string]map[string]string{
	"base_product": {
		"plan_code": "string", "start_date": "date", "end_date": "date",
		"seats": "int", "max_seats_used": "int", "trial": "bool", "auto_renew": "bool",
		"trial_starts_on": "date", "trial_ends_on": "date",
	},
	"storage": {
		"additional_purchased_storage_size": "int", "additional_purchased_storage_ends_on": "date",
	},
	"compute_minutes": {
		"shared_runners_minutes_limit": "int", "extra_shared_runners_minutes_limit": "int",
	},
}

// apply updates the namespace with one provision the way
// SyncNamespaceService does.
func (g *GitLab) apply(id string, p map[string]any) {
	n, ok := g.state[id]
	if !ok {
		n = &Namespace{Subscription: map[string]any{}, Limits: map[string]any{}}
		g.state[id] = n
	}
	for hash, fields := range declared {
		h, _ := p[hash].(map[string]any)
		if len(h) == 0 { // blank: skipped
			continue
		}
		dst := n.Limits
		if hash == "base_product" {
			dst = n.Subscription
		}
		for k := range fields {
			if v, sent := h[k]; sent {
				dst[k] = v
			}
		}
	}
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
	g.apply(r.PathValue("id"), p)
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
	hashes := map[string]map[string]any{"base_product": bp}
	for _, name := range []string{"storage", "compute_minutes"} {
		if h, ok := p[name].(map[string]any); ok {
			hashes[name] = h
		}
	}
	for hash, fields := range declared {
		for field, kind := range fields {
			v, present := hashes[hash][field]
			if present && v != nil && !validKind(v, kind) {
				return nil, fmt.Errorf("provision[%s][%s] is invalid", hash, field)
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
