package failure

import "regexp"

// scrubbers replace, in order, what must never reach logs, dead_letters or
// traces (DESIGN.md rule 7): e-mail addresses and the shapes of the secrets
// the functions hold. Tokens go before e-mail addresses, whose pattern could
// otherwise cut one in half.
var scrubbers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(?i)\bbearer\s+[A-Za-z0-9._~+/!=-]+`), "Bearer [redacted]"},
	{regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`), "[jwt]"},
	{regexp.MustCompile(`\b(sk|rk)_(test|live)_[A-Za-z0-9]+`), "[stripe key]"},
	{regexp.MustCompile(`\bwhsec_[A-Za-z0-9_]+`), "[webhook secret]"},
	{regexp.MustCompile(`\bxox[abposr]-[A-Za-z0-9-]+`), "[slack token]"},
	{regexp.MustCompile(`\bglpat-[A-Za-z0-9_-]+`), "[gitlab token]"},
	// A Salesforce session id: the org id, "!", the token.
	{regexp.MustCompile(`\b00D[A-Za-z0-9]+![A-Za-z0-9._-]+`), "[salesforce token]"},
	// A Slack incoming webhook's path is its secret, whatever the host.
	{regexp.MustCompile(`hooks\.slack\.com/[^\s"'<>]+`), "hooks.slack.com/[redacted]"},
	{regexp.MustCompile(`/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[^\s"'<>]+`), "/services/[redacted]"},
	{regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*`), "[email]"},
}

// Scrub removes e-mail addresses and known secret shapes (bearer tokens,
// JWTs, Stripe keys and webhook secrets, Slack webhooks and tokens, GitLab
// and Salesforce tokens) from s, an error text about to be logged or stored.
func Scrub(s string) string {
	for _, r := range scrubbers {
		s = r.re.ReplaceAllString(s, r.with)
	}
	return s
}

// scrubbedError is err with its text scrubbed; errors.Is, errors.As and
// IsPermanent still see err.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// Scrubbed returns err with its text passed through Scrub, keeping err's
// chain (and so its classification). Scrubbed(nil) is nil.
func Scrubbed(err error) error {
	if err == nil {
		return nil
	}
	msg := Scrub(err.Error())
	if msg == err.Error() {
		return err
	}
	return &scrubbedError{msg: msg, err: err}
}
