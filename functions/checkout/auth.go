package checkout

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Authenticator names the caller of a request, or refuses it.
type Authenticator interface {
	Caller(r *http.Request) (string, error)
}

// ErrUnauthenticated is a request without a valid ID token of an allowed caller.
var ErrUnauthenticated = errors.New("unauthenticated")

// OIDC verifies the caller's OpenID Connect ID token (Authorization:
// Bearer): on GCP one Google signs for the caller's service account, with
// the function's URL as audience; locally one the test issuer signs
// (shared/testsupport/oidcissuer). The token's email (else its subject)
// must be in the allow-list.
type OIDC struct {
	verifier *oidc.IDTokenVerifier
	allowed  map[string]bool
}

// NewOIDC verifies tokens of issuer, whose keys are served at jwksURL
// (fetched when first needed, and again when a token names an unknown
// key), for audience, from the callers listed.
func NewOIDC(ctx context.Context, issuer, jwksURL, audience string, callers []string) *OIDC {
	keys := oidc.NewRemoteKeySet(context.WithoutCancel(ctx), jwksURL)
	o := &OIDC{
		verifier: oidc.NewVerifier(issuer, keys, &oidc.Config{ClientID: audience, SupportedSigningAlgs: []string{oidc.RS256}}),
		allowed:  map[string]bool{},
	}
	for _, c := range callers {
		o.allowed[c] = true
	}
	return o
}

// Caller verifies the request's ID token and returns the caller's identity.
func (o *OIDC) Caller(r *http.Request) (string, error) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		return "", fmt.Errorf("%w: no bearer token", ErrUnauthenticated)
	}
	tok, err := o.verifier.Verify(r.Context(), raw)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
	}
	if err := tok.Claims(&claims); err != nil {
		return "", fmt.Errorf("%w: claims: %v", ErrUnauthenticated, err)
	}
	id := tok.Subject
	if claims.Email != "" && claims.EmailVerified {
		id = claims.Email
	}
	if !o.allowed[id] {
		return "", fmt.Errorf("%w: caller %q not allowed", ErrUnauthenticated, id)
	}
	return id, nil
}
