package localstack

import (
	"time"

	"fulfillment/shared/testsupport/oidcissuer"
)

// The checkout function's local identity: the local OIDC issuer
// (shared/testsupport/oidcissuer) stands in for Google, and this caller for
// GitLab.com's service account.
const (
	CheckoutAudience = "http://checkout.fulfillment.local"
	CheckoutCaller   = "gitlab-com@fulfillment-local.iam.gserviceaccount.com"
)

// startOIDC runs the local OIDC issuer whose ID tokens the checkout
// function accepts.
func (s *Stack) startOIDC() (err error) {
	if s.OIDC, err = oidcissuer.Start("127.0.0.1:0"); err != nil {
		return err
	}
	s.closers = append(s.closers, s.OIDC.Close)
	return nil
}

// CheckoutToken is an ID token of the local caller for the checkout function.
func (s *Stack) CheckoutToken() string {
	return s.OIDC.Token(CheckoutCaller, CheckoutAudience, time.Hour)
}

// checkoutEnv are the checkout settings of the local stack. Completed
// checkouts without a quote are still provisioned locally
// (CHECKOUT_REQUIRE_QUOTE=false): the older end-to-end suites send
// completion webhooks for sessions no quote was made for. Sessions made
// through the checkout API carry a quote id and are checked against it
// either way.
func (s *Stack) checkoutEnv() map[string]string {
	return map[string]string{
		"OIDC_ISSUER":            s.OIDC.URL(),
		"OIDC_JWKS_URL":          s.OIDC.JWKSURL(),
		"OIDC_AUDIENCE":          CheckoutAudience,
		"CHECKOUT_CALLERS":       CheckoutCaller,
		"CHECKOUT_REQUIRE_QUOTE": "false",
	}
}
