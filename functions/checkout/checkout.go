// Package checkout is the purchase API: GitLab.com and the web store POST a
// purchase, it is priced from the catalog into a stored quote, and a Stripe
// Checkout Session is created for exactly that quote (the buyer pays there;
// checkout-webhook and payment-result take the completion and check it
// against the quote). It also starts, answers about, ends and converts free
// trials. Every request is authenticated with an OIDC ID token (Authenticator).
package checkout

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"fulfillment/shared/adapters/gitlab"
	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/adapters/stripe"
	"fulfillment/shared/domain/clock"
)

// Name is the function's name in logs, FUNCTION_TARGET and deployments.
const Name = "checkout"

// maxBody caps a request; a purchase is well under a KiB.
const maxBody = 64 << 10

// Payments is what the checkout needs of Stripe (stripe.Billing).
type Payments interface {
	CreateCustomer(ctx context.Context, c stripe.CustomerRequest) (string, error)
	CreateCheckoutSession(ctx context.Context, r stripe.SessionRequest) (stripe.Session, error)
	// PromotionCode is the id of the active promotion code, "" for none.
	PromotionCode(ctx context.Context, code string) (string, error)
}

// Provisioner is what trials need of GitLab (gitlab.Client).
type Provisioner interface {
	Provision(ctx context.Context, namespaceID string, req gitlab.ProvisionRequest) error
}

// TrialPolicy says what a trial is.
type TrialPolicy struct {
	PlanCode string
	Days     int
	// EndingNoticeDays is how long before the end trial.ending goes out.
	EndingNoticeDays int
}

// Deps are what the checkout needs.
type Deps struct {
	Store     *store.Store
	Publisher pubsub.Publisher
	Payments  Payments
	GitLab    Provisioner
	Auth      Authenticator
	// TickCallers are the identities that run the trial tick (Cloud
	// Scheduler's service account). When any are named, only they may call
	// POST /trials/tick, and they may call nothing else; when none are,
	// every authenticated caller may call every route.
	TickCallers []string
	// QuoteTTL is how long a quote (and its session) can be paid: Stripe
	// takes 30 minutes to 24 hours.
	QuoteTTL time.Duration
	// StripeTax asks Stripe Tax for automatic tax on every session.
	StripeTax bool
	Trial     TrialPolicy
	Clock     clock.Clock
	Logger    *slog.Logger
	Close     func() error
}

// Function is the checkout API.
type Function struct {
	d   Deps
	mux *http.ServeMux
}

// New returns the checkout API.
func New(d Deps) *Function {
	if d.Clock == nil {
		d.Clock = clock.System{}
	}
	if d.QuoteTTL <= 0 {
		d.QuoteTTL = time.Hour
	}
	if d.Trial.PlanCode == "" {
		d.Trial.PlanCode = "ultimate"
	}
	if d.Trial.Days <= 0 {
		d.Trial.Days = 30
	}
	if d.Trial.EndingNoticeDays <= 0 {
		d.Trial.EndingNoticeDays = 7
	}
	f := &Function{d: d, mux: http.NewServeMux()}
	f.mux.HandleFunc("POST /checkouts", f.authenticated(buyerRoute, f.createCheckout))
	f.mux.HandleFunc("GET /checkouts/{id}", f.authenticated(buyerRoute, f.showQuote))
	f.mux.HandleFunc("POST /trials", f.authenticated(buyerRoute, f.startTrial))
	f.mux.HandleFunc("GET /trials/eligibility", f.authenticated(buyerRoute, f.trialEligibility))
	f.mux.HandleFunc("POST /trials/tick", f.authenticated(tickRoute, f.trialTick))
	return f
}

// Close releases the clients.
func (f *Function) Close() error {
	if f.d.Close == nil {
		return nil
	}
	return f.d.Close()
}

// ServeHTTP routes a request.
func (f *Function) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.mux.ServeHTTP(w, r) }

type callerKey struct{}

// Who a route is for: the buyers' callers (GitLab.com, the web store) or
// the scheduler that runs the trial tick.
const (
	buyerRoute = false
	tickRoute  = true
)

// authenticated refuses a request without a valid ID token of an allowed
// caller (401), or from a caller the route is not for (403), before
// anything is read or stored: the tick's identity cannot buy, and a buyer's
// cannot end everyone's trials.
func (f *Function) authenticated(tick bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		caller, err := f.d.Auth.Caller(r)
		if err != nil {
			f.d.Logger.WarnContext(r.Context(), "checkout request refused", "path", r.URL.Path, "error", err.Error())
			reply(w, http.StatusUnauthorized, problem("unauthenticated", "a valid ID token of an allowed caller is required"))
			return
		}
		if len(f.d.TickCallers) > 0 && slices.Contains(f.d.TickCallers, caller) != tick {
			f.d.Logger.WarnContext(r.Context(), "checkout request refused: route not for the caller", "path", r.URL.Path, "caller", caller)
			reply(w, http.StatusForbidden, problem("forbidden", "this caller may not call "+r.URL.Path))
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, caller)))
	}
}

func callerOf(ctx context.Context) string { s, _ := ctx.Value(callerKey{}).(string); return s }

// Problem is every error answer.
type Problem struct {
	Error  string `json:"error"`
	Detail string `json:"detail"`
}

func problem(code, detail string) Problem { return Problem{Error: code, Detail: detail} }

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
