// Package failure classifies errors into the two delivery outcomes every
// function needs: transient (retry: return the error so Pub/Sub or the caller
// redelivers) and permanent (record, dead-letter, acknowledge).
package failure

import (
	"errors"
	"fmt"
	"net/http"
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
