package licensing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode"

	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/license"
	"fulfillment/shared/domain/subscription"
	"fulfillment/shared/runtime/cloudevent"
	"fulfillment/shared/runtime/consumer"
	"fulfillment/shared/runtime/httpbody"
)

// maxBody caps a request to either endpoint; GitLab's are under 2 KiB.
const maxBody = 64 << 10

// maxQuery caps a GraphQL document.
const maxQuery = 16 << 10

// schemaSDL is the part of CustomersDot's GraphQL API a GitLab instance
// calls for cloud licensing: the cloudActivationActivate mutation, with the
// selection GitLab's subscription portal client makes.
const schemaSDL = `
schema { query: Query mutation: Mutation }

type Query {
  "Always true: lets a client check the endpoint."
  ok: Boolean!
}

type Mutation {
  cloudActivationActivate(input: CloudActivationActivateInput!): CloudActivationActivatePayload!
}

input CloudActivationActivateInput {
  activationCode: String!
  instanceIdentifier: String!
  uniqueInstanceId: String
  automated: Boolean
  gitlabVersion: String
  hostname: String
  clientMutationId: String
}

type CloudActivationActivatePayload {
  clientMutationId: String
  licenseKey: String
  futureSubscriptions: [FutureSubscription!]
  newSubscription: Boolean
  errors: [String!]!
}

type FutureSubscription {
  cloudLicenseEnabled: Boolean!
  offlineCloudLicenseEnabled: Boolean!
  plan: String!
  company: String
  email: String
  name: String
  startsAt: String
  expiresAt: String
  usersInLicenseCount: Int!
}
`

// The refusals an activation answers with, as GraphQL errors.
const (
	errInvalidCode     = "Activation code is invalid"
	errUsedElsewhere   = "Activation code has already been used to activate another instance"
	errEnded           = "The subscription of this activation code has ended or was revoked"
	errNotPaid         = "The subscription of this activation code is not paid yet"
	errTooManyForCode  = "Too many activation attempts for this code; try again later"
	errTooManyFromHere = "Too many activation attempts; try again later"
	errInvalidInstance = "instanceIdentifier is invalid"
	errUnavailable     = "Temporarily unavailable; try again"
)

type resolver struct{ f *Function }

// Ok answers the trivial query.
func (*resolver) Ok() bool { return true }

// ActivateInput is the mutation's input.
type ActivateInput struct {
	ActivationCode     string
	InstanceIdentifier string
	UniqueInstanceId   *string //nolint:revive // GraphQL field name
	Automated          *bool
	GitlabVersion      *string
	Hostname           *string
	ClientMutationId   *string //nolint:revive // GraphQL field name
}

// Payload is the mutation's answer.
type Payload struct {
	ClientMutationId    *string //nolint:revive // GraphQL field name
	LicenseKey          *string
	FutureSubscriptions *[]FutureSubscription
	NewSubscription     *bool
	Errors              []string
}

// FutureSubscription is a subscription starting after the current one
// (none yet: renewals replace the license in place).
type FutureSubscription struct {
	CloudLicenseEnabled        bool
	OfflineCloudLicenseEnabled bool
	Plan                       string
	Company, Email, Name       *string
	StartsAt, ExpiresAt        *string
	UsersInLicenseCount        int32
}

// CloudActivationActivate resolves the mutation. Every refusal is in
// errors; a storage fault too (GitLab shows it and the admin retries).
func (r *resolver) CloudActivationActivate(ctx context.Context, args struct{ Input ActivateInput }) *Payload {
	in := args.Input
	p := &Payload{ClientMutationId: in.ClientMutationId, Errors: []string{}}
	if overLimit(ctx) {
		p.Errors = []string{errTooManyFromHere}
		return p
	}
	res, err := r.f.activate(ctx, in)
	if err != nil {
		msg, ok := asRefusal(err)
		if !ok {
			r.f.d.Logger.ErrorContext(ctx, "activation failed", "error", err.Error())
			msg = errUnavailable
		}
		p.Errors = []string{msg}
		return p
	}
	p.LicenseKey, p.NewSubscription = &res.key, &res.first
	p.FutureSubscriptions = &[]FutureSubscription{}
	return p
}

type activation struct {
	key   string
	first bool
}

// activate checks a code and binds it to the calling instance.
func (f *Function) activate(ctx context.Context, in ActivateInput) (activation, error) {
	if !license.WellFormedCode(in.ActivationCode) {
		return activation{}, refuse(errInvalidCode)
	}
	// It names documents (seat reports): printable, and no path separator.
	if !printable(in.InstanceIdentifier, 255) || strings.Contains(in.InstanceIdentifier, "/") {
		return activation{}, refuse(errInvalidInstance)
	}
	hash := license.HashCode(f.d.CodePepper, in.ActivationCode)
	idx, found, err := f.d.Store.ActivationCode(ctx, nil, hash)
	switch {
	case err != nil:
		return activation{}, err
	case !found:
		return activation{}, refuse(errInvalidCode) // nothing is stored for an unknown code
	}
	now := f.d.Clock.Now()
	n, err := f.d.Store.CountActivationAttempt(ctx, hash, now, f.d.Policy.PerCodeWindow)
	if err != nil {
		return activation{}, err
	}
	if n > f.d.Policy.PerCodeAttempts {
		return activation{}, refuse(errTooManyForCode)
	}
	var first bool
	cl, err := f.d.Store.UpdateCloudLicense(ctx, idx.SubscriptionID, false, func(sub *subscription.Subscription, c *store.CloudLicense) (bool, error) {
		first = false
		switch {
		case sub.Status == subscription.Pending:
			return false, refuse(errNotPaid)
		case !running(sub.Status) || !now.Before(sub.TermEnd):
			return false, refuse(errEnded)
		case c.CodeHash != hash:
			return false, refuse(errInvalidCode) // a superseded code
		case c.Activated() && c.InstanceID != in.InstanceIdentifier:
			return false, refuse(errUsedElsewhere)
		}
		if !c.Activated() {
			first = true
			c.InstanceID, c.ActivatedAt, c.LastSyncAt = in.InstanceIdentifier, now, now
			if in.UniqueInstanceId != nil && printable(*in.UniqueInstanceId, 255) {
				c.UniqueInstanceID = *in.UniqueInstanceId
			}
		}
		if in.Hostname != nil && printable(*in.Hostname, 255) {
			c.Hostname = *in.Hostname
		}
		if in.GitlabVersion != nil && printable(*in.GitlabVersion, 64) {
			c.GitLabVersion = *in.GitlabVersion
		}
		_, err := Refresh(sub, c, f.d.SigningKey, now)
		return true, err
	})
	if err != nil {
		if msg, ok := asRefusal(err); ok {
			return activation{}, refuse(msg)
		}
		if errors.Is(err, store.ErrNotFound) {
			return activation{}, refuse(errInvalidCode)
		}
		return activation{}, err
	}
	// Announced once per binding: the dedupe record of this synthetic input
	// holds the event, and a repeated activation re-publishes the same one.
	if err := f.announce(ctx, "activated_"+cl.SubscriptionID+"_"+cl.InstanceID, cl.SubscriptionID, func(ctx context.Context, tx store.Tx) ([]consumer.Outgoing, error) {
		e, err := cloudevent.New(ctx, "license-activated_"+cl.SubscriptionID+"_"+cl.InstanceID, catalog.SourceLicensing, catalog.LicenseActivated, cl.SubscriptionID,
			catalog.LicenseActivation{SubscriptionID: cl.SubscriptionID, InstanceID: cl.InstanceID, ActivatedAt: cl.ActivatedAt})
		if err != nil {
			return nil, err
		}
		return []consumer.Outgoing{{Topic: catalog.TopicSubscriptionEvents, Event: e}}, nil
	}); err != nil {
		return activation{}, err
	}
	return activation{key: cl.Key, first: first}, nil
}

// announce runs apply exactly once in effect for the input named id (the
// consumer's dedupe record), and publishes what it returns.
func (f *Function) announce(ctx context.Context, id, subject string, apply func(ctx context.Context, tx store.Tx) ([]consumer.Outgoing, error)) error {
	in, err := cloudevent.New(ctx, id, catalog.SourceLicensing, "licensing.internal", subject, map[string]string{})
	if err != nil {
		return err
	}
	return f.proc.Once(ctx, in, consumer.Work{Apply: apply})
}

func printable(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// gqlRequest is a GraphQL POST body.
type gqlRequest struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName"`
	Variables     map[string]any `json:"variables"`
}

type gqlError struct {
	Message string `json:"message"`
}

func gqlFail(w http.ResponseWriter, status int, msg string) {
	reply(w, status, map[string]any{"errors": []gqlError{{Message: msg}}})
}

// overLimitKey marks a request's context past the per-address limit.
type overLimitKey struct{}

func overLimit(ctx context.Context) bool { v, _ := ctx.Value(overLimitKey{}).(bool); return v }

// serveGraphQL answers POST /graphql: 405 for another method, 413 for an
// oversized body, 400 for a body that is not a GraphQL request, and 200
// with the GraphQL response otherwise (syntax and validation errors in its
// errors, as GraphQL servers do). Past the per-address limit the mutation
// is refused in its errors, before any code is looked at: GitLab shows an
// activation's errors to the admin, but any non-2xx only as its generic
// CONNECTIVITY_ERROR.
func (f *Function) serveGraphQL(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		gqlFail(w, http.StatusMethodNotAllowed, "POST only")
		return
	}
	if !f.ips.allow(clientIP(r, f.d.Policy.forwarding()), f.d.Clock.Now()) {
		ctx = context.WithValue(ctx, overLimitKey{}, true)
	}
	body, err := httpbody.Read(w, r, maxBody)
	if err != nil {
		gqlFail(w, http.StatusRequestEntityTooLarge, "request body too large or unreadable")
		return
	}
	var req gqlRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		gqlFail(w, http.StatusBadRequest, "malformed JSON: "+err.Error())
		return
	}
	if req.Query == "" {
		gqlFail(w, http.StatusBadRequest, "no query")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	reply(w, http.StatusOK, f.schema.Exec(ctx, req.Query, req.OperationName, req.Variables))
}
