// Package failure classifies errors into the two delivery outcomes every
// function needs: transient (retry: return the error so Pub/Sub or the caller
// redelivers) and permanent (record, dead-letter, acknowledge).
package failure

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// permanentError marks an error that no retry can fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as permanent. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// Permanentf formats a permanent error.
func Permanentf(format string, args ...any) error {
	return Permanent(fmt.Errorf(format, args...))
}

// IsPermanent reports whether err, or any error it wraps, is permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// HTTPError is a non-2xx answer from an outside system.
type HTTPError struct {
	Service    string
	StatusCode int
	Body       string
	// RetryAfter is the server's Retry-After hint, zero when absent.
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s answered %d: %s", e.Service, e.StatusCode, e.Body)
}

// CallError is a call to an outside system that got no answer (refused,
// timed out, unresolvable) or could not be made (a URL that does not parse).
// Its text names the service and the host only: the path and query of a URL
// can hold a secret (a Slack webhook's token), and this text is logged and
// kept in dead_letters. *url.Error, which http.Client.Do returns, prints the
// whole URL.
type CallError struct {
	Service string
	Op      string // the HTTP method, or "parse"
	Host    string // empty when the URL did not parse
	Err     error  // the cause, without the URL
}

func (e *CallError) Error() string {
	if e.Host == "" {
		return fmt.Sprintf("%s: %s URL: %v", e.Service, e.Op, e.Err)
	}
	return fmt.Sprintf("%s: %s %s: %v", e.Service, e.Op, e.Host, e.Err)
}

func (e *CallError) Unwrap() error { return e.Err }

// Timeout reports whether the call timed out, as *url.Error does.
func (e *CallError) Timeout() bool {
	t, ok := e.Err.(interface{ Timeout() bool })
	return ok && t.Timeout()
}

// Call hides the URL in an error of http.NewRequest or http.Client.Do behind
// the service's name and the URL's host; other errors are prefixed with the
// service. Call(service, nil) is nil. It does not classify: network errors
// stay transient unless the caller marks them.
func Call(service string, err error) error {
	if err == nil {
		return nil
	}
	ue, ok := err.(*url.Error)
	if !ok {
		return fmt.Errorf("%s: %w", service, err)
	}
	e := &CallError{Service: service, Op: ue.Op, Err: ue.Err}
	if ue.Op != "parse" {
		if u, perr := url.Parse(ue.URL); perr == nil {
			e.Host = u.Host
		}
	}
	return e
}

// FromResponse turns a non-2xx response into an error classified by its
// status: 4xx other than 408 and 429 are permanent, the rest transient.
// body should already be read (and truncated) by the caller.
func FromResponse(service string, resp *http.Response, body []byte) error {
	if len(body) > 512 {
		body = body[:512]
	}
	e := &HTTPError{Service: service, StatusCode: resp.StatusCode, Body: string(body)}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if secs, err := strconv.Atoi(s); err == nil {
			e.RetryAfter = time.Duration(secs) * time.Second
		}
	}
	if RetryableStatus(resp.StatusCode) {
		return e
	}
	return Permanent(e)
}

// RetryableStatus reports whether a retry can fix an answer with this status.
func RetryableStatus(code int) bool {
	return code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests
}
