// Package oidcissuer is a tiny local OpenID Connect issuer: the local
// stand-in for Google's, which signs the ID tokens GitLab.com and the web
// store call the checkout function with on GCP. It serves the discovery
// document and the JWKS over HTTP with an RS256 key generated at start, and
// signs ID tokens, so the checkout function verifies them with the same
// library (coreos/go-oidc) and code path as in production.
package oidcissuer

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer signs ID tokens and publishes its keys.
type Issuer struct {
	key *rsa.PrivateKey
	kid string
	ln  net.Listener
	srv *http.Server
}

// Start serves an issuer on addr ("127.0.0.1:0" for a free port).
func Start(addr string) (*Issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("oidcissuer.Start: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("oidcissuer.Start: %w", err)
	}
	is := &Issuer{key: key, kid: "local-1", ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", is.discovery)
	mux.HandleFunc("GET /jwks", is.jwks)
	is.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = is.srv.Serve(ln) }()
	return is, nil
}

// URL is the issuer (the iss claim and the discovery base).
func (is *Issuer) URL() string { return "http://" + is.ln.Addr().String() }

// JWKSURL is where the issuer's public keys are served.
func (is *Issuer) JWKSURL() string { return is.URL() + "/jwks" }

// Close stops the issuer.
func (is *Issuer) Close() error { return is.srv.Close() }

// Token returns an ID token for email (also the subject) with audience,
// valid for ttl, signed by the issuer.
func (is *Issuer) Token(email, audience string, ttl time.Duration) string {
	return sign(is.key, is.kid, is.URL(), email, audience, ttl)
}

// Forged returns a token with the issuer's claims and key id but signed
// with a key the issuer never published: what an attacker can make.
func (is *Issuer) Forged(email, audience string) string {
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	return sign(other, is.kid, is.URL(), email, audience, time.Hour)
}

func sign(key *rsa.PrivateKey, kid, iss, email, aud string, ttl time.Duration) string {
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": iss, "sub": email, "aud": aud, "email": email, "email_verified": true,
		"iat": now.Unix(), "exp": now.Add(ttl).Unix(),
	})
	t.Header["kid"] = kid
	s, err := t.SignedString(key)
	if err != nil {
		panic(err) // an RSA key always signs
	}
	return s
}

func (is *Issuer) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{
		"issuer": is.URL(), "jwks_uri": is.JWKSURL(), "id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"},
		"authorization_endpoint": is.URL() + "/authorize",
	})
}

func (is *Issuer) jwks(w http.ResponseWriter, _ *http.Request) {
	pub := is.key.PublicKey
	writeJSON(w, map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": is.kid,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
