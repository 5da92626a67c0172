// Package httpbody reads a request's body whole, within a limit.
package httpbody

import (
	"errors"
	"io"
	"net/http"
)

// Read reads r's body, at most limit bytes: over it, the error is an
// *http.MaxBytesError (and w's connection closes after the answer, as
// http.MaxBytesReader does). The buffer is sized from Content-Length when
// the request gives one within the limit, so a body of a few KiB is read
// into one allocation, where io.ReadAll grows it from 512 bytes, copying
// it each time.
func Read(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	if r.ContentLength <= 0 || r.ContentLength > limit {
		return io.ReadAll(body)
	}
	// One byte more than announced, so the read that finds the end has
	// room and the buffer never grows for an honest Content-Length.
	b := make([]byte, 0, r.ContentLength+1)
	for {
		n, err := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}
