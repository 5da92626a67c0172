// Package licensing is cloud licensing for self-managed GitLab instances,
// in the wire formats GitLab's own code speaks (docs/licensing.md):
//
//   - POST /graphql: the cloudActivationActivate mutation GitLab's
//     ee/lib/gitlab/subscription_portal/clients/graphql.rb sends. A valid
//     activation code binds one instance and returns its signed license key;
//     every refusal is a GraphQL `errors` entry, never a 500.
//   - POST /api/v1/seat_links: the daily seat link of GitLab's
//     SyncSeatLinkRequestWorker. The license key is the credential; the report
//     feeds max_seats_used and seats_owed through the same store path as
//     seat-usage (store.RecordSeatReport), and the answer carries a new license
//     whenever the license changed since the key the instance sent.
//   - POST /tasks/sync-check: Cloud Scheduler's daily strict-sync check:
//     an instance silent for OverdueDays is announced (license.sync_overdue);
//     one still silent GraceDays later has its auto-renewal turned off.
//
// Offline licenses and usage files (air-gapped instances) go through the
// same code from fulfillctl (offline.go).
package licensing

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/graph-gophers/graphql-go"

	"fulfillment/shared/adapters/pubsub"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/clock"
	"fulfillment/shared/domain/license"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/consumer"
)

// Name is the function's name in logs, FUNCTION_TARGET and deployments.
const Name = "licensing"

// Policy is the strict-sync and rate-limit policy.
type Policy struct {
	// OverdueDays without a sync before the instance is announced overdue (7).
	OverdueDays int
	// GraceDays after that before its auto-renewal is turned off (30).
	GraceDays int
	// PerIPAttempts activation requests per PerIPWindow from one address (20 a minute).
	PerIPAttempts int
	PerIPWindow   time.Duration
	// PerCodeAttempts activations of one code per PerCodeWindow (10 an hour).
	PerCodeAttempts int
	PerCodeWindow   time.Duration
	// TrustForwardedFor takes the client address from X-Forwarded-For (set
	// behind Cloud Run's front end), else RemoteAddr; TrustedProxyHops are
	// the entries after the client's that our own proxies append (a gateway
	// in front of the function: 1).
	TrustForwardedFor bool
	TrustedProxyHops  int
	// SeatLinksPerIP seat links per SeatLinksPerIPWindow from one address,
	// in process (60 a minute), and SeatLinksPerLicense per
	// SeatLinksPerLicenseWindow of one subscription's license, in the store
	// (50 a day: GitLab syncs daily, plus its worker's retries and the
	// admin's manual syncs).
	SeatLinksPerIP            int
	SeatLinksPerIPWindow      time.Duration
	SeatLinksPerLicense       int
	SeatLinksPerLicenseWindow time.Duration
}

func (p Policy) forwarding() forwarding {
	return forwarding{trust: p.TrustForwardedFor, hops: max(p.TrustedProxyHops, 0)}
}

// DefaultPolicy is the documented policy.
func DefaultPolicy() Policy {
	return Policy{OverdueDays: 7, GraceDays: 30, PerIPAttempts: 20, PerIPWindow: time.Minute, PerCodeAttempts: 10, PerCodeWindow: time.Hour,
		SeatLinksPerIP: 60, SeatLinksPerIPWindow: time.Minute, SeatLinksPerLicense: 50, SeatLinksPerLicenseWindow: 24 * time.Hour}
}

// withDefaults fills each unset part of p from DefaultPolicy; a limit and
// its window are set together or not at all.
func (p Policy) withDefaults() Policy {
	def := DefaultPolicy()
	if p.OverdueDays <= 0 {
		p.OverdueDays = def.OverdueDays
	}
	if p.GraceDays <= 0 {
		p.GraceDays = def.GraceDays
	}
	if p.PerIPAttempts <= 0 || p.PerIPWindow <= 0 {
		p.PerIPAttempts, p.PerIPWindow = def.PerIPAttempts, def.PerIPWindow
	}
	if p.PerCodeAttempts <= 0 || p.PerCodeWindow <= 0 {
		p.PerCodeAttempts, p.PerCodeWindow = def.PerCodeAttempts, def.PerCodeWindow
	}
	if p.SeatLinksPerIP <= 0 || p.SeatLinksPerIPWindow <= 0 {
		p.SeatLinksPerIP, p.SeatLinksPerIPWindow = def.SeatLinksPerIP, def.SeatLinksPerIPWindow
	}
	if p.SeatLinksPerLicense <= 0 || p.SeatLinksPerLicenseWindow <= 0 {
		p.SeatLinksPerLicense, p.SeatLinksPerLicenseWindow = def.SeatLinksPerLicense, def.SeatLinksPerLicenseWindow
	}
	return p
}

// Deps are what licensing needs.
type Deps struct {
	Store     *store.Store
	Publisher pubsub.Publisher
	// SigningKey signs licenses; instances verify them with its public key.
	SigningKey ed25519.PrivateKey
	// CodePepper keys the activation codes' hashes (provisioning's too).
	CodePepper      []byte
	Policy          Policy
	DeadLetterTopic string
	Clock           clock.Clock
	Logger          *slog.Logger
	Close           func() error
}

// Function is licensing.
type Function struct {
	d      Deps
	proc   *consumer.Processor
	schema *graphql.Schema
	ips    *limiter // activations per address
	// linkIPs are seat links per address, apart from activations so that
	// daily syncs cannot crowd out an admin's activation from the same NAT.
	linkIPs *limiter
	mux     *http.ServeMux
}

// New returns licensing.
func New(d Deps) *Function {
	if d.Clock == nil {
		d.Clock = clock.System{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	d.Policy = d.Policy.withDefaults()
	f := &Function{d: d, ips: newLimiter(d.Policy.PerIPAttempts, d.Policy.PerIPWindow),
		linkIPs: newLimiter(d.Policy.SeatLinksPerIP, d.Policy.SeatLinksPerIPWindow)}
	f.proc = &consumer.Processor{Name: Name, Journal: d.Store, Publisher: d.Publisher, DeadLetterTopic: d.DeadLetterTopic, Logger: d.Logger}
	f.schema = graphql.MustParseSchema(schemaSDL, &resolver{f: f},
		graphql.UseFieldResolvers(), graphql.MaxDepth(8), graphql.MaxQueryLength(maxQuery), graphql.MaxParallelism(4))
	f.mux = http.NewServeMux()
	f.mux.HandleFunc("/graphql", f.serveGraphQL)
	f.mux.HandleFunc("/api/v1/seat_links", f.serveSeatLink)
	f.mux.HandleFunc("/tasks/sync-check", f.serveSyncCheck)
	return f
}

// ServeHTTP routes the three endpoints.
func (f *Function) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.mux.ServeHTTP(w, r) }

// Close releases the clients.
func (f *Function) Close() error {
	if f.d.Close == nil {
		return nil
	}
	return f.d.Close()
}

// Refresh brings c's license up to what sub calls for now (license.ForSubscription):
// when what it grants changed (its fingerprint), a new license is signed with
// the next serial, which supersedes every earlier one. It reports whether
// a new license was issued. Signing calls nobody, so it may run inside a
// transaction.
func Refresh(sub *subscription.Subscription, c *store.CloudLicense, key ed25519.PrivateKey, now time.Time) (bool, error) {
	want := license.ForSubscription(sub, c.InstanceID, c.UniqueInstanceID)
	want.Cloud, want.Offline = !c.Offline, c.Offline
	fp := license.Fingerprint(want)
	if c.Key != "" && fp == c.Fingerprint {
		return false, nil
	}
	want.Serial = c.Serial + 1
	want.ID = fmt.Sprintf("lic-%s-s%d", sub.ID, want.Serial)
	want.IssuedAt = now.UTC()
	signed, err := license.Sign(want, key)
	if err != nil {
		return false, err
	}
	c.Serial, c.Status, c.Fingerprint, c.Key, c.IssuedAt = want.Serial, want.Status, fp, signed.Key(), want.IssuedAt
	return true, nil
}

// refusal is an answer to the caller (a GraphQL error, a 422), not a fault.
type refusal struct{ msg string }

func (r refusal) Error() string { return r.msg }

func refuse(msg string) error { return refusal{msg} }

// tooMany is a seat link past a limit (429), to retry after retryAfter.
type tooMany struct {
	msg        string
	retryAfter time.Duration
}

func (t tooMany) Error() string { return t.msg }

// seconds is the Retry-After header's value: whole seconds, at least 1.
func (t tooMany) seconds() string {
	return strconv.Itoa(max(int(t.retryAfter.Round(time.Second)/time.Second), 1))
}

func asRefusal(err error) (string, bool) {
	var r refusal
	if errors.As(err, &r) {
		return r.msg, true
	}
	return "", false
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// running says whether a subscription is in a paid term (or its dunning).
func running(s subscription.Status) bool {
	switch s {
	case subscription.Active, subscription.PastDue, subscription.Grace, subscription.Suspended:
		return true
	}
	return false
}
